/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A read-only MC146818 CMOS clock at ports 0x70/0x71 that reports the host's
 * UTC time in BCD, so the guest starts with the right wall-clock time. Status
 * register A never shows an update in progress, so reads never have to wait.
 */
#ifndef SMCORE_RTC_H
#define SMCORE_RTC_H

#include <pthread.h>
#include <stdint.h>

#include "io_bus.h"

#define RTC_PORT 0x70

struct rtc {
	pthread_mutex_t lock;
	uint8_t index;
};

void rtc__init(struct rtc *rtc);
void rtc__destroy(struct rtc *rtc);
/* The value of CMOS register `index` at time `now` (seconds since the epoch). Exposed for tests. */
uint8_t rtc__register(uint8_t index, int64_t now);

extern const struct io_device_ops rtc_io_ops;

#endif
