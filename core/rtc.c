/* SPDX-License-Identifier: Apache-2.0 */
#include "rtc.h"

#include <string.h>
#include <time.h>

enum {
	CMOS_SECONDS = 0x00,
	CMOS_MINUTES = 0x02,
	CMOS_HOURS = 0x04,
	CMOS_WEEKDAY = 0x06,
	CMOS_DAY = 0x07,
	CMOS_MONTH = 0x08,
	CMOS_YEAR = 0x09,
	CMOS_STATUS_A = 0x0a,
	CMOS_STATUS_B = 0x0b,
	CMOS_STATUS_C = 0x0c,
	CMOS_STATUS_D = 0x0d,
	CMOS_CENTURY = 0x32,
};

#define STATUS_B_24_HOUR 0x02
#define STATUS_D_VALID_RAM 0x80

void rtc__init(struct rtc *rtc)
{
	memset(rtc, 0, sizeof(*rtc));
	pthread_mutex_init(&rtc->lock, NULL);
}

void rtc__destroy(struct rtc *rtc)
{
	pthread_mutex_destroy(&rtc->lock);
}

static uint8_t to_bcd(int value)
{
	return (uint8_t)(((value / 10) << 4) | (value % 10));
}

uint8_t rtc__register(uint8_t index, int64_t now)
{
	time_t seconds = (time_t)now;
	struct tm tm;

	gmtime_r(&seconds, &tm);
	switch (index) {
	case CMOS_SECONDS:
		return to_bcd(tm.tm_sec);
	case CMOS_MINUTES:
		return to_bcd(tm.tm_min);
	case CMOS_HOURS:
		return to_bcd(tm.tm_hour);
	case CMOS_WEEKDAY:
		return to_bcd(tm.tm_wday + 1);
	case CMOS_DAY:
		return to_bcd(tm.tm_mday);
	case CMOS_MONTH:
		return to_bcd(tm.tm_mon + 1);
	case CMOS_YEAR:
		return to_bcd(tm.tm_year % 100);
	case CMOS_CENTURY:
		return to_bcd((tm.tm_year + 1900) / 100);
	case CMOS_STATUS_A:
		return 0x26; /* 32.768 kHz time base, 1024 Hz rate, update not in progress */
	case CMOS_STATUS_B:
		return STATUS_B_24_HOUR; /* BCD, 24-hour, no interrupts */
	case CMOS_STATUS_C:
		return 0;
	case CMOS_STATUS_D:
		return STATUS_D_VALID_RAM;
	default:
		return 0;
	}
}

static void rtc_read(void *opaque, uint64_t offset, void *data, uint32_t size)
{
	struct rtc *rtc = opaque;
	uint8_t index;

	memset(data, 0, size);
	if (offset != 1)
		return;
	pthread_mutex_lock(&rtc->lock);
	index = rtc->index;
	pthread_mutex_unlock(&rtc->lock);
	*(uint8_t *)data = rtc__register(index, time(NULL));
}

static void rtc_write(void *opaque, uint64_t offset, const void *data, uint32_t size)
{
	struct rtc *rtc = opaque;

	if (offset != 0)
		return; /* the clock is read-only */
	pthread_mutex_lock(&rtc->lock);
	rtc->index = *(const uint8_t *)data & 0x7f; /* bit 7 masks NMIs on a PC */
	pthread_mutex_unlock(&rtc->lock);
}

const struct io_device_ops rtc_io_ops = {
	.read = rtc_read,
	.write = rtc_write,
};
