/* SPDX-License-Identifier: Apache-2.0 */
/*
 * An epoll loop on its own thread for plugins' file descriptors and timers.
 * Callbacks run on the loop thread, one at a time.
 */
#ifndef SMCORE_EVENT_LOOP_H
#define SMCORE_EVENT_LOOP_H

#include <pthread.h>
#include <stdint.h>

#include <smcore/plugin.h>

struct event_watch;

struct event_loop {
	int epoll_fd;
	int wake_fd;               /* eventfd that stops the loop */
	pthread_t thread;
	int running;
	pthread_mutex_t lock;
	struct event_watch *watches;
};

/* Create the epoll instance and start the loop thread; 0 or -errno. */
int event_loop__start(struct event_loop *loop);
/* Stop the thread and free every watch and timer. */
void event_loop__stop(struct event_loop *loop);
/* Call `cb` when `fd` has any of `events` (EPOLLIN, EPOLLOUT); 0, -EEXIST or -errno. */
int event_loop__watch(struct event_loop *loop, int fd, uint32_t events,
		      smcore_fd_callback cb, void *opaque);
/* Stop watching `fd`; 0 or -ENOENT. */
int event_loop__unwatch(struct event_loop *loop, int fd);
/* Call `cb` once after `ns` nanoseconds; 0 or -errno. */
int event_loop__timer(struct event_loop *loop, uint64_t ns, smcore_timer_callback cb, void *opaque);

#endif
