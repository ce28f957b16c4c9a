/* SPDX-License-Identifier: Apache-2.0 */
#define _GNU_SOURCE
#include "event_loop.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "log.h"

struct event_watch {
	struct event_watch *next;
	int fd;
	int is_timer;             /* the loop owns fd and frees the watch after one expiry */
	smcore_fd_callback fd_cb;
	smcore_timer_callback timer_cb;
	void *opaque;
};

/* Called with the lock held. */
static struct event_watch **find_watch(struct event_loop *loop, int fd)
{
	struct event_watch **link = &loop->watches;

	while (*link && (*link)->fd != fd)
		link = &(*link)->next;
	return link;
}

static void run_watch(struct event_loop *loop, int fd, uint32_t events)
{
	struct event_watch **link, *watch;
	smcore_fd_callback fd_cb = NULL;
	smcore_timer_callback timer_cb = NULL;
	void *opaque = NULL;

	pthread_mutex_lock(&loop->lock);
	link = find_watch(loop, fd);
	watch = *link;
	if (watch) {
		opaque = watch->opaque;
		fd_cb = watch->fd_cb;
		timer_cb = watch->timer_cb;
		if (watch->is_timer) {
			*link = watch->next;
			epoll_ctl(loop->epoll_fd, EPOLL_CTL_DEL, fd, NULL);
			close(fd);
			free(watch);
		}
	}
	pthread_mutex_unlock(&loop->lock);

	/* Callbacks run without the lock, so they may add or remove watches. */
	if (timer_cb)
		timer_cb(opaque);
	else if (fd_cb)
		fd_cb(opaque, fd, events);
}

static void *loop_thread(void *opaque)
{
	struct event_loop *loop = opaque;
	struct epoll_event events[16];

	for (;;) {
		int count = epoll_wait(loop->epoll_fd, events, 16, -1);

		if (count < 0 && errno == EINTR)
			continue;
		if (count < 0) {
			log_error("event-loop", "epoll_wait failed: %s", strerror(errno));
			return NULL;
		}
		for (int i = 0; i < count; i++) {
			if (events[i].data.fd == loop->wake_fd)
				return NULL;
			run_watch(loop, events[i].data.fd, events[i].events);
		}
	}
}

int event_loop__start(struct event_loop *loop)
{
	struct epoll_event event = { .events = EPOLLIN };
	int ret;

	memset(loop, 0, sizeof(*loop));
	pthread_mutex_init(&loop->lock, NULL);
	loop->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	loop->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (loop->epoll_fd < 0 || loop->wake_fd < 0) {
		ret = -errno;
		goto fail;
	}
	event.data.fd = loop->wake_fd;
	if (epoll_ctl(loop->epoll_fd, EPOLL_CTL_ADD, loop->wake_fd, &event) != 0) {
		ret = -errno;
		goto fail;
	}
	ret = -pthread_create(&loop->thread, NULL, loop_thread, loop);
	if (ret)
		goto fail;
	loop->running = 1;
	return 0;

fail:
	if (loop->wake_fd >= 0)
		close(loop->wake_fd);
	if (loop->epoll_fd >= 0)
		close(loop->epoll_fd);
	pthread_mutex_destroy(&loop->lock);
	return ret;
}

void event_loop__stop(struct event_loop *loop)
{
	uint64_t one = 1;

	if (!loop->running)
		return;
	if (write(loop->wake_fd, &one, sizeof(one)) != sizeof(one))
		log_error("event-loop", "cannot wake the loop thread: %s", strerror(errno));
	pthread_join(loop->thread, NULL);
	loop->running = 0;

	while (loop->watches) {
		struct event_watch *watch = loop->watches;

		loop->watches = watch->next;
		if (watch->is_timer)
			close(watch->fd);
		free(watch);
	}
	close(loop->wake_fd);
	close(loop->epoll_fd);
	pthread_mutex_destroy(&loop->lock);
}

static int add_watch(struct event_loop *loop, struct event_watch *watch, uint32_t events)
{
	struct epoll_event event = { .events = events, .data.fd = watch->fd };
	int ret = 0;

	pthread_mutex_lock(&loop->lock);
	if (*find_watch(loop, watch->fd)) {
		ret = -EEXIST;
	} else if (epoll_ctl(loop->epoll_fd, EPOLL_CTL_ADD, watch->fd, &event) != 0) {
		ret = -errno;
	} else {
		watch->next = loop->watches;
		loop->watches = watch;
	}
	pthread_mutex_unlock(&loop->lock);
	return ret;
}

int event_loop__watch(struct event_loop *loop, int fd, uint32_t events,
		      smcore_fd_callback cb, void *opaque)
{
	struct event_watch *watch = calloc(1, sizeof(*watch));
	int ret;

	if (!watch)
		return -ENOMEM;
	*watch = (struct event_watch){ .fd = fd, .fd_cb = cb, .opaque = opaque };
	ret = add_watch(loop, watch, events);
	if (ret)
		free(watch);
	return ret;
}

int event_loop__unwatch(struct event_loop *loop, int fd)
{
	struct event_watch **link, *watch;

	pthread_mutex_lock(&loop->lock);
	link = find_watch(loop, fd);
	watch = *link;
	if (watch) {
		*link = watch->next;
		epoll_ctl(loop->epoll_fd, EPOLL_CTL_DEL, fd, NULL);
	}
	pthread_mutex_unlock(&loop->lock);
	free(watch);
	return watch ? 0 : -ENOENT;
}

int event_loop__timer(struct event_loop *loop, uint64_t ns, smcore_timer_callback cb, void *opaque)
{
	struct itimerspec when = {
		.it_value = { .tv_sec = (time_t)(ns / 1000000000), .tv_nsec = (long)(ns % 1000000000) },
	};
	struct event_watch *watch;
	int fd, ret;

	if (ns == 0)
		when.it_value.tv_nsec = 1; /* a zero it_value would disarm the timer */
	fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (fd < 0)
		return -errno;
	if (timerfd_settime(fd, 0, &when, NULL) != 0) {
		ret = -errno;
		close(fd);
		return ret;
	}
	watch = calloc(1, sizeof(*watch));
	if (!watch) {
		close(fd);
		return -ENOMEM;
	}
	*watch = (struct event_watch){ .fd = fd, .is_timer = 1, .timer_cb = cb, .opaque = opaque };
	ret = add_watch(loop, watch, EPOLLIN);
	if (ret) {
		close(fd);
		free(watch);
	}
	return ret;
}
