/* SPDX-License-Identifier: Apache-2.0 */
/* The virtio-mmio register block, driven through its io_device_ops as a guest driver would. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "guest_memory.h"
#include "virtio_mmio.h"
#include "virtqueue.h"

#define RAM_SIZE (16ull << 20)
#define BASE 0xd0000000ull
#define IRQ 5
#define QUEUE_SIZE 16
#define DESC_GPA 0x1000ull
#define AVAIL_GPA 0x2000ull
#define USED_GPA 0x3000ull
#define DEVICE_FEATURE_BIT 5

struct device_stub {
	int notifies;
	int last_notified_queue;
	int resets;
	int set_features_calls;
	uint64_t features;
	int set_features_result;
	int irq_level;
	int irq_changes;
	uint8_t config[8];
	/* When set, the reset waits for another thread's push, as a device's I/O thread would. */
	struct virtio_mmio *push_during_reset;
	int push_result;
	bool push_finished;
};

struct fixture {
	struct guest_memory mem;
	struct device_stub stub;
	struct virtio_mmio *transport;
};

static int stub_notify(void *opaque, uint16_t queue)
{
	struct device_stub *stub = opaque;

	stub->notifies++;
	stub->last_notified_queue = queue;
	return 0;
}

static void *push_late(void *opaque)
{
	struct device_stub *stub = opaque;

	stub->push_result = virtio_mmio__push(stub->push_during_reset, 0, 0, 512);
	return NULL;
}

static int stub_reset(void *opaque)
{
	struct device_stub *stub = opaque;
	struct timespec deadline;
	pthread_t thread;

	stub->resets++;
	if (!stub->push_during_reset)
		return 0;
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += 2;
	assert_int_equal(pthread_create(&thread, NULL, push_late, stub), 0);
	if (pthread_timedjoin_np(thread, NULL, &deadline) == 0) {
		stub->push_finished = true;
	} else {
		/* Deadlocked on the transport lock: leave the thread, the test fails below. */
		pthread_detach(thread);
	}
	return 0;
}

static int stub_config_read(void *opaque, uint32_t offset, void *data, uint32_t len)
{
	memcpy(data, ((struct device_stub *)opaque)->config + offset, len);
	return 0;
}

static int stub_config_write(void *opaque, uint32_t offset, const void *data, uint32_t len)
{
	memcpy(((struct device_stub *)opaque)->config + offset, data, len);
	return 0;
}

static int stub_set_features(void *opaque, uint64_t features)
{
	struct device_stub *stub = opaque;

	stub->set_features_calls++;
	stub->features = features;
	return stub->set_features_result;
}

static void stub_set_irq(void *opaque, int level)
{
	struct device_stub *stub = opaque;

	stub->irq_level = level;
	stub->irq_changes++;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct smcore_device_info info = {
		.virtio_id = 2, .features = 1ull << DEVICE_FEATURE_BIT, .queues = 2,
		.queue_max_size = 256, .config_size = sizeof(f->stub.config),
	};
	struct virtio_mmio_callbacks callbacks = {
		.opaque = &f->stub, .queue_notify = stub_notify, .reset = stub_reset,
		.config_read = stub_config_read, .config_write = stub_config_write,
		.set_features = stub_set_features, .set_irq = stub_set_irq,
	};
	struct sm_error err = { 0 };

	assert_non_null(f);
	assert_int_equal(guest_memory__init(&f->mem, RAM_SIZE), 0);
	f->stub.last_notified_queue = -1;
	memcpy(f->stub.config, "\x11\x22\x33\x44\x55\x66\x77\x88", 8);
	assert_int_equal(virtio_mmio__create(&info, &callbacks, &f->mem, BASE, IRQ, &f->transport, &err), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	virtio_mmio__destroy(f->transport);
	guest_memory__destroy(&f->mem);
	free(f);
	return 0;
}

static uint32_t reg_read(struct fixture *f, uint64_t offset)
{
	uint32_t value = 0xdeadbeef;

	virtio_mmio__io_ops.read(f->transport, offset, &value, sizeof(value));
	return value;
}

static void reg_write(struct fixture *f, uint64_t offset, uint32_t value)
{
	virtio_mmio__io_ops.write(f->transport, offset, &value, sizeof(value));
}

static void write_features(struct fixture *f, uint64_t features)
{
	reg_write(f, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	reg_write(f, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)features);
	reg_write(f, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	reg_write(f, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(features >> 32));
}

static void set_up_queue(struct fixture *f, uint32_t queue)
{
	reg_write(f, VIRTIO_MMIO_QUEUE_SEL, queue);
	reg_write(f, VIRTIO_MMIO_QUEUE_NUM, QUEUE_SIZE);
	reg_write(f, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)DESC_GPA);
	reg_write(f, VIRTIO_MMIO_QUEUE_DESC_HIGH, 0);
	reg_write(f, VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint32_t)AVAIL_GPA);
	reg_write(f, VIRTIO_MMIO_QUEUE_DRIVER_HIGH, 0);
	reg_write(f, VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)USED_GPA);
	reg_write(f, VIRTIO_MMIO_QUEUE_DEVICE_HIGH, 0);
	reg_write(f, VIRTIO_MMIO_QUEUE_READY, 1);
}

/* Run the driver's initialisation sequence up to DRIVER_OK with queue 0 ready. */
static void bring_up(struct fixture *f)
{
	reg_write(f, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	write_features(f, 1ull << VIRTIO_F_VERSION_1);
	reg_write(f, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
		  VIRTIO_STATUS_FEATURES_OK);
	assert_true(reg_read(f, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_FEATURES_OK);
	set_up_queue(f, 0);
	assert_int_equal(reg_read(f, VIRTIO_MMIO_QUEUE_READY), 1);
	reg_write(f, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
		  VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
}

static void identity_registers_read(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(reg_read(f, VIRTIO_MMIO_MAGIC_VALUE), 0x74726976);
	assert_int_equal(reg_read(f, VIRTIO_MMIO_VERSION), 2);
	assert_int_equal(reg_read(f, VIRTIO_MMIO_DEVICE_ID), 2);
	assert_int_equal(reg_read(f, VIRTIO_MMIO_VENDOR_ID), VIRTIO_MMIO_VENDOR);
	assert_int_equal(reg_read(f, VIRTIO_MMIO_STATUS), 0);
	assert_int_equal(reg_read(f, VIRTIO_MMIO_QUEUE_NUM_MAX), 256);
	reg_write(f, VIRTIO_MMIO_QUEUE_SEL, 2);
	assert_int_equal(reg_read(f, VIRTIO_MMIO_QUEUE_NUM_MAX), 0);
}

static void device_features_offered(void **state)
{
	struct fixture *f = *state;

	reg_write(f, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	assert_int_equal(reg_read(f, VIRTIO_MMIO_DEVICE_FEATURES),
			 (1u << DEVICE_FEATURE_BIT) | (1u << VIRTIO_F_EVENT_IDX) |
			 (1u << VIRTIO_F_INDIRECT_DESC));
	reg_write(f, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	assert_int_equal(reg_read(f, VIRTIO_MMIO_DEVICE_FEATURES), 1u << (VIRTIO_F_VERSION_1 - 32));
	reg_write(f, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 2);
	assert_int_equal(reg_read(f, VIRTIO_MMIO_DEVICE_FEATURES), 0);
}

static void feature_subset_accepted(void **state)
{
	struct fixture *f = *state;
	uint64_t features = (1ull << VIRTIO_F_VERSION_1) | (1ull << DEVICE_FEATURE_BIT) |
			    (1ull << VIRTIO_F_EVENT_IDX);

	write_features(f, features);
	reg_write(f, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
		  VIRTIO_STATUS_FEATURES_OK);
	assert_int_equal(reg_read(f, VIRTIO_MMIO_STATUS), VIRTIO_STATUS_ACKNOWLEDGE |
			 VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
	assert_int_equal(f->stub.set_features_calls, 1);
	assert_int_equal(f->stub.features, features);
	assert_int_equal(virtio_mmio__driver_features(f->transport), features);

	/* Once FEATURES_OK is set, DriverFeatures no longer changes. */
	write_features(f, 1ull << VIRTIO_F_VERSION_1);
	assert_int_equal(virtio_mmio__driver_features(f->transport), features);
}

static void feature_superset_rejected(void **state)
{
	struct fixture *f = *state;

	write_features(f, (1ull << VIRTIO_F_VERSION_1) | (1ull << 7));
	reg_write(f, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
		  VIRTIO_STATUS_FEATURES_OK);
	assert_int_equal(reg_read(f, VIRTIO_MMIO_STATUS), VIRTIO_STATUS_ACKNOWLEDGE |
			 VIRTIO_STATUS_DRIVER);
	assert_int_equal(f->stub.set_features_calls, 0);
}

static void feature_without_version_1_rejected(void **state)
{
	struct fixture *f = *state;

	write_features(f, 1ull << DEVICE_FEATURE_BIT);
	reg_write(f, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_FEATURES_OK);
	assert_int_equal(reg_read(f, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_FEATURES_OK, 0);
}

static void feature_rejected_by_device(void **state)
{
	struct fixture *f = *state;

	f->stub.set_features_result = -EINVAL;
	write_features(f, 1ull << VIRTIO_F_VERSION_1);
	reg_write(f, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_FEATURES_OK);
	assert_int_equal(f->stub.set_features_calls, 1);
	assert_int_equal(reg_read(f, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_FEATURES_OK, 0);
}

static void queue_setup_and_ready(void **state)
{
	struct fixture *f = *state;

	bring_up(f);
	reg_write(f, VIRTIO_MMIO_QUEUE_SEL, 1);
	assert_int_equal(reg_read(f, VIRTIO_MMIO_QUEUE_READY), 0);
	reg_write(f, VIRTIO_MMIO_QUEUE_SEL, 0);
	assert_int_equal(reg_read(f, VIRTIO_MMIO_QUEUE_READY), 1);
	assert_int_equal(reg_read(f, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET, 0);
}

static void queue_bad_layout_not_ready(void **state)
{
	struct fixture *f = *state;

	reg_write(f, VIRTIO_MMIO_QUEUE_SEL, 1);
	reg_write(f, VIRTIO_MMIO_QUEUE_NUM, 24);
	reg_write(f, VIRTIO_MMIO_QUEUE_DESC_LOW, 0x1000);
	reg_write(f, VIRTIO_MMIO_QUEUE_READY, 1);
	assert_int_equal(reg_read(f, VIRTIO_MMIO_QUEUE_READY), 0);
	assert_true(reg_read(f, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);

	reg_write(f, VIRTIO_MMIO_STATUS, 0);
	reg_write(f, VIRTIO_MMIO_QUEUE_SEL, 1);
	reg_write(f, VIRTIO_MMIO_QUEUE_NUM, 512);
	reg_write(f, VIRTIO_MMIO_QUEUE_READY, 1);
	assert_int_equal(reg_read(f, VIRTIO_MMIO_QUEUE_READY), 0);

	reg_write(f, VIRTIO_MMIO_STATUS, 0);
	reg_write(f, VIRTIO_MMIO_QUEUE_SEL, 1);
	reg_write(f, VIRTIO_MMIO_QUEUE_NUM, 16);
	reg_write(f, VIRTIO_MMIO_QUEUE_DEVICE_LOW, 0);
	reg_write(f, VIRTIO_MMIO_QUEUE_DEVICE_HIGH, 0x10);
	reg_write(f, VIRTIO_MMIO_QUEUE_READY, 1);
	assert_int_equal(reg_read(f, VIRTIO_MMIO_QUEUE_READY), 0);
}

static void notify_calls_device(void **state)
{
	struct fixture *f = *state;

	bring_up(f);
	reg_write(f, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	assert_int_equal(f->stub.notifies, 1);
	assert_int_equal(f->stub.last_notified_queue, 0);

	/* Queue 1 is not ready and queue 9 does not exist. */
	reg_write(f, VIRTIO_MMIO_QUEUE_NOTIFY, 1);
	reg_write(f, VIRTIO_MMIO_QUEUE_NOTIFY, 9);
	assert_int_equal(f->stub.notifies, 1);

	set_up_queue(f, 1);
	reg_write(f, VIRTIO_MMIO_QUEUE_NOTIFY, 1);
	assert_int_equal(f->stub.notifies, 2);
	assert_int_equal(f->stub.last_notified_queue, 1);
}

static void push_raises_used_interrupt(void **state)
{
	struct fixture *f = *state;
	struct smcore_iovec iov[4];
	struct smcore_chain chain;
	struct virtq_desc desc = { .addr = 0x10000, .len = 64, .flags = VIRTQ_DESC_F_WRITE };
	uint16_t head = 0, idx = 1;

	bring_up(f);
	assert_int_equal(guest_memory__write(&f->mem, DESC_GPA, &desc, sizeof(desc)), 0);
	assert_int_equal(guest_memory__write(&f->mem, AVAIL_GPA + 4, &head, sizeof(head)), 0);
	assert_int_equal(guest_memory__write(&f->mem, AVAIL_GPA + 2, &idx, sizeof(idx)), 0);

	assert_int_equal(virtio_mmio__pop(f->transport, 0, &chain, iov, 4), 1);
	assert_int_equal(chain.count, 1);
	assert_int_equal(virtio_mmio__pop(f->transport, 0, &chain, iov, 4), 0);
	assert_int_equal(virtio_mmio__push(f->transport, 0, chain.head, 64), 0);
	assert_int_equal(reg_read(f, VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_VRING);
	assert_int_equal(f->stub.irq_level, 1);

	reg_write(f, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_VRING);
	assert_int_equal(reg_read(f, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
	assert_int_equal(f->stub.irq_level, 0);

	assert_int_equal(virtio_mmio__pop(f->transport, 1, &chain, iov, 4), -EINVAL);
	assert_int_equal(virtio_mmio__push(f->transport, 1, 0, 0), -EINVAL);
}

static void broken_queue_needs_reset(void **state)
{
	struct fixture *f = *state;
	struct smcore_iovec iov[4];
	struct smcore_chain chain;
	uint16_t head = QUEUE_SIZE, idx = 1;

	bring_up(f);
	assert_int_equal(guest_memory__write(&f->mem, AVAIL_GPA + 4, &head, sizeof(head)), 0);
	assert_int_equal(guest_memory__write(&f->mem, AVAIL_GPA + 2, &idx, sizeof(idx)), 0);

	assert_int_equal(virtio_mmio__pop(f->transport, 0, &chain, iov, 4), -EINVAL);
	assert_true(reg_read(f, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	assert_int_equal(reg_read(f, VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_CONFIG);
	assert_int_equal(f->stub.irq_level, 1);

	/* The driver cannot clear DEVICE_NEEDS_RESET except by a reset. */
	reg_write(f, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
		  VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK | VIRTIO_STATUS_FAILED);
	assert_true(reg_read(f, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
}

static void reset_clears_state(void **state)
{
	struct fixture *f = *state;

	bring_up(f);
	virtio_mmio__config_changed(f->transport);
	assert_int_equal(f->stub.irq_level, 1);

	reg_write(f, VIRTIO_MMIO_STATUS, 0);
	assert_int_equal(f->stub.resets, 1);
	assert_int_equal(reg_read(f, VIRTIO_MMIO_STATUS), 0);
	assert_int_equal(reg_read(f, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
	assert_int_equal(f->stub.irq_level, 0);
	assert_int_equal(virtio_mmio__driver_features(f->transport), 0);
	reg_write(f, VIRTIO_MMIO_QUEUE_SEL, 0);
	assert_int_equal(reg_read(f, VIRTIO_MMIO_QUEUE_READY), 0);
	reg_write(f, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	assert_int_equal(f->stub.notifies, 0);

	/* The device comes up again after a reset. */
	bring_up(f);
	assert_int_equal(reg_read(f, VIRTIO_MMIO_QUEUE_READY), 1);
}

/* A device thread that finishes a request while the driver resets must not deadlock, nor push. */
static void reset_lets_device_threads_finish(void **state)
{
	struct fixture *f = *state;

	bring_up(f);
	f->stub.push_during_reset = f->transport;
	reg_write(f, VIRTIO_MMIO_STATUS, 0);
	assert_true(f->stub.push_finished);
	assert_int_equal(f->stub.push_result, -EINVAL);
	assert_int_equal(reg_read(f, VIRTIO_MMIO_STATUS), 0);
}

static void config_generation_counts(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(reg_read(f, VIRTIO_MMIO_CONFIG_GENERATION), 0);
	virtio_mmio__config_changed(f->transport);
	assert_int_equal(reg_read(f, VIRTIO_MMIO_CONFIG_GENERATION), 1);
	assert_int_equal(reg_read(f, VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_CONFIG);
}

static void config_space_access(void **state)
{
	struct fixture *f = *state;
	uint8_t byte = 0;
	uint16_t half = 0;
	uint32_t word = 0xffffffff;
	uint64_t quad = 0;

	virtio_mmio__io_ops.read(f->transport, VIRTIO_MMIO_CONFIG + 1, &byte, 1);
	assert_int_equal(byte, 0x22);
	virtio_mmio__io_ops.read(f->transport, VIRTIO_MMIO_CONFIG + 2, &half, 2);
	assert_int_equal(half, 0x4433);
	virtio_mmio__io_ops.read(f->transport, VIRTIO_MMIO_CONFIG, &quad, 8);
	assert_int_equal(quad, 0x8877665544332211ull);

	/* Past config_size reads 0 and writes nothing. */
	virtio_mmio__io_ops.read(f->transport, VIRTIO_MMIO_CONFIG + 6, &word, 4);
	assert_int_equal(word, 0);
	word = 0xaabbccdd;
	virtio_mmio__io_ops.write(f->transport, VIRTIO_MMIO_CONFIG + 6, &word, 4);
	assert_int_equal(f->stub.config[6], 0x77);
	virtio_mmio__io_ops.write(f->transport, VIRTIO_MMIO_CONFIG + 4, &word, 4);
	assert_int_equal(f->stub.config[4], 0xdd);
	assert_int_equal(f->stub.config[7], 0xaa);
}

static void bad_accesses_read_zero(void **state)
{
	struct fixture *f = *state;
	uint8_t byte = 0xff;
	uint16_t half = 0xffff;
	uint64_t quad = ~0ull;

	virtio_mmio__io_ops.read(f->transport, VIRTIO_MMIO_MAGIC_VALUE, &byte, 1);
	assert_int_equal(byte, 0);
	virtio_mmio__io_ops.read(f->transport, VIRTIO_MMIO_MAGIC_VALUE, &half, 2);
	assert_int_equal(half, 0);
	virtio_mmio__io_ops.read(f->transport, VIRTIO_MMIO_MAGIC_VALUE, &quad, 8);
	assert_int_equal(quad, 0);
	assert_int_equal(reg_read(f, VIRTIO_MMIO_MAGIC_VALUE + 2), 0);
	assert_int_equal(reg_read(f, 0x0c0), 0);
	assert_int_equal(reg_read(f, VIRTIO_MMIO_QUEUE_NOTIFY), 0);
	assert_int_equal(reg_read(f, VIRTIO_MMIO_CONFIG + 0x800), 0);

	/* Writes of the wrong width or to read-only registers change nothing. */
	virtio_mmio__io_ops.write(f->transport, VIRTIO_MMIO_STATUS, &byte, 1);
	reg_write(f, VIRTIO_MMIO_MAGIC_VALUE, 0);
	reg_write(f, 0x0c0, 1);
	assert_int_equal(reg_read(f, VIRTIO_MMIO_STATUS), 0);
	assert_int_equal(reg_read(f, VIRTIO_MMIO_MAGIC_VALUE), VIRTIO_MMIO_MAGIC);
}

static void cmdline_fragment_format(void **state)
{
	struct fixture *f = *state;
	char buf[64];
	char small[8];

	assert_int_equal(virtio_mmio__cmdline(f->transport, buf, sizeof(buf)),
			 (int)strlen("virtio_mmio.device=0x1000@0xd0000000:5"));
	assert_string_equal(buf, "virtio_mmio.device=0x1000@0xd0000000:5");
	assert_int_equal(virtio_mmio__cmdline(f->transport, small, sizeof(small)), -ENOSPC);
}

static void create_rejects_bad_info(void **state)
{
	struct guest_memory *mem = &((struct fixture *)*state)->mem;
	struct smcore_device_info info = { .virtio_id = 1, .queues = 1, .queue_max_size = 100 };
	struct virtio_mmio *transport = NULL;
	struct sm_error err = { 0 };

	assert_int_equal(virtio_mmio__create(&info, NULL, mem, BASE, IRQ, &transport, &err), -EINVAL);
	assert_non_null(strstr(err.message, "invalid queue size 100"));
	info.queue_max_size = 64;
	info.queues = 0;
	assert_int_equal(virtio_mmio__create(&info, NULL, mem, BASE, IRQ, &transport, &err), -EINVAL);
	info.queues = 1;
	info.config_size = VIRTIO_MMIO_SIZE;
	assert_int_equal(virtio_mmio__create(&info, NULL, mem, BASE, IRQ, &transport, &err), -EINVAL);
	assert_null(transport);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(identity_registers_read, setup, teardown),
		cmocka_unit_test_setup_teardown(device_features_offered, setup, teardown),
		cmocka_unit_test_setup_teardown(feature_subset_accepted, setup, teardown),
		cmocka_unit_test_setup_teardown(feature_superset_rejected, setup, teardown),
		cmocka_unit_test_setup_teardown(feature_without_version_1_rejected, setup, teardown),
		cmocka_unit_test_setup_teardown(feature_rejected_by_device, setup, teardown),
		cmocka_unit_test_setup_teardown(queue_setup_and_ready, setup, teardown),
		cmocka_unit_test_setup_teardown(queue_bad_layout_not_ready, setup, teardown),
		cmocka_unit_test_setup_teardown(notify_calls_device, setup, teardown),
		cmocka_unit_test_setup_teardown(push_raises_used_interrupt, setup, teardown),
		cmocka_unit_test_setup_teardown(broken_queue_needs_reset, setup, teardown),
		cmocka_unit_test_setup_teardown(reset_clears_state, setup, teardown),
		cmocka_unit_test_setup_teardown(reset_lets_device_threads_finish, setup, teardown),
		cmocka_unit_test_setup_teardown(config_generation_counts, setup, teardown),
		cmocka_unit_test_setup_teardown(config_space_access, setup, teardown),
		cmocka_unit_test_setup_teardown(bad_accesses_read_zero, setup, teardown),
		cmocka_unit_test_setup_teardown(cmdline_fragment_format, setup, teardown),
		cmocka_unit_test_setup_teardown(create_rejects_bad_info, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
