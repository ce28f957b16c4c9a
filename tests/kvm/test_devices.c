/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Hostile virtqueues against real device plugins on KVM. A ring-3 test guest
 * programs two dev-blk disks through their virtio-mmio registers: the first
 * gets a broken ring, the second a good read request. The first must end in
 * DEVICE_NEEDS_RESET while the second serves its read, and the process lives.
 * Exits 77 when /dev/kvm cannot be opened.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "device.h"
#include "event_loop.h"
#include "io_bus.h"
#include "plugin_loader.h"
#include "testvm.h"
#include "virtio_mmio.h"
#include "virtqueue.h"
#include "vm.h"

#define SKIP_EXIT_CODE 77
#define DONE_PORT 0x33
#define DISK_SIZE (1u << 20)
#define QUEUE_SIZE 8u

/* Where each disk's rings and buffers live in the guest's user data area. */
struct ring_layout {
	uint64_t desc, avail, used, header, data, status;
};

static const struct ring_layout layouts[2] = {
	{ 0x21000, 0x22000, 0x23000, 0x27200, 0x29000, 0x27300 },
	{ 0x24000, 0x25000, 0x26000, 0x27000, 0x28000, 0x27100 },
};

#define SCRIPT_GPA 0x2a000

struct blk_header {
	uint32_t type;
	uint32_t reserved;
	uint64_t sector;
};

struct rig {
	struct testvm t;
	struct sm_vm vm;
	struct plugin_search search;
	char dir[64];
	char disk_path[2][96];
	struct config_value values[2][2];
	struct config_section sections[2];
};

static void put_desc(struct rig *rig, uint64_t table, uint16_t index, uint64_t addr, uint32_t len,
		     uint16_t flags, uint16_t next)
{
	struct virtq_desc desc = { .addr = addr, .len = len, .flags = flags, .next = next };

	memcpy(rig->t.memory + table + index * sizeof(desc), &desc, sizeof(desc));
}

static void put16(struct rig *rig, uint64_t gpa, uint16_t value)
{
	memcpy(rig->t.memory + gpa, &value, sizeof(value));
}

static uint16_t get16(struct rig *rig, uint64_t gpa)
{
	uint16_t value;

	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	memcpy(&value, rig->t.memory + gpa, sizeof(value));
	return value;
}

/* Offer chain `head` as the only available entry of the disk's queue. */
static void make_available(struct rig *rig, int disk, uint16_t head, uint16_t avail_idx)
{
	const struct ring_layout *l = &layouts[disk];

	put16(rig, l->avail + 4, head);   /* ring[0] */
	put16(rig, l->avail + 2, avail_idx);
}

/* A well-formed read of sector 0 into the data buffer. */
static void write_good_request(struct rig *rig, int disk)
{
	const struct ring_layout *l = &layouts[disk];
	struct blk_header header = { .type = 0, .sector = 0 };

	memcpy(rig->t.memory + l->header, &header, sizeof(header));
	rig->t.memory[l->status] = 0xff;
	memset(rig->t.memory + l->data, 0, 512);
	put_desc(rig, l->desc, 0, l->header, sizeof(header), VIRTQ_DESC_F_NEXT, 1);
	put_desc(rig, l->desc, 1, l->data, 512, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 2);
	put_desc(rig, l->desc, 2, l->status, 1, VIRTQ_DESC_F_WRITE, 0);
	make_available(rig, disk, 0, 1);
}

/* Append the register writes that bring a disk's queue 0 up and notify it. */
static size_t script_device(uint64_t *script, size_t n, int disk)
{
	const struct ring_layout *l = &layouts[disk];
	uint64_t base = device__mmio_base((size_t)disk);
	const uint64_t writes[][2] = {
		{ VIRTIO_MMIO_STATUS, 0 },
		{ VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE },
		{ VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER },
		{ VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1 },
		{ VIRTIO_MMIO_DRIVER_FEATURES, 1 }, /* VIRTIO_F_VERSION_1 */
		{ VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0 },
		{ VIRTIO_MMIO_DRIVER_FEATURES, 0 },
		{ VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK },
		{ VIRTIO_MMIO_QUEUE_SEL, 0 },
		{ VIRTIO_MMIO_QUEUE_NUM, QUEUE_SIZE },
		{ VIRTIO_MMIO_QUEUE_DESC_LOW, l->desc },
		{ VIRTIO_MMIO_QUEUE_DESC_HIGH, 0 },
		{ VIRTIO_MMIO_QUEUE_DRIVER_LOW, l->avail },
		{ VIRTIO_MMIO_QUEUE_DRIVER_HIGH, 0 },
		{ VIRTIO_MMIO_QUEUE_DEVICE_LOW, l->used },
		{ VIRTIO_MMIO_QUEUE_DEVICE_HIGH, 0 },
		{ VIRTIO_MMIO_QUEUE_READY, 1 },
		{ VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
				      VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK },
		{ VIRTIO_MMIO_QUEUE_NOTIFY, 0 },
	};

	for (size_t i = 0; i < sizeof(writes) / sizeof(writes[0]); i++) {
		script[n++] = base + writes[i][0];
		script[n++] = writes[i][1];
	}
	return n;
}

static uint32_t read_register(struct rig *rig, int disk, uint64_t offset)
{
	uint32_t value = 0;

	io_bus__access(&rig->vm.mmio, device__mmio_base((size_t)disk) + offset, (uint8_t *)&value,
		       sizeof(value), 0);
	return value;
}

static void make_disk(const char *path, char fill)
{
	char sector[512];
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	assert_true(fd >= 0);
	memset(sector, fill, sizeof(sector));
	snprintf(sector, sizeof(sector), "disk %c, sector 0", fill);
	assert_int_equal(pwrite(fd, sector, sizeof(sector), 0), (ssize_t)sizeof(sector));
	assert_int_equal(ftruncate(fd, DISK_SIZE), 0);
	close(fd);
}

static int setup(void **state)
{
	struct rig *rig = calloc(1, sizeof(*rig));
	char *plugin_dirs[] = { (char *)SMCORE_PLUGIN_DIR };
	struct sm_error err = { 0 };
	struct sm_device *device;

	assert_non_null(rig);
	snprintf(rig->dir, sizeof(rig->dir), "/tmp/smcore-devices-XXXXXX");
	assert_non_null(mkdtemp(rig->dir));
	assert_int_equal(testvm__create(&rig->t, 1, SMCORE_CPU_TEMPLATE_HOST, 0), 0);

	rig->vm.mem = (struct guest_memory){
		.base = rig->t.memory, .size = GUEST_MEMORY_SIZE, .region_count = 1,
		.regions = { { .gpa = 0, .size = GUEST_MEMORY_SIZE, .hva = rig->t.memory } },
	};
	rig->vm.accel = &testvm_ops;
	rig->vm.handle = rig->t.vm;
	io_bus__init(&rig->vm.mmio, "mmio");
	assert_int_equal(event_loop__start(&rig->vm.events), 0);
	assert_int_equal(plugin_search__init(&rig->search, plugin_dirs, 1, NULL), 0);

	for (int disk = 0; disk < 2; disk++) {
		snprintf(rig->disk_path[disk], sizeof(rig->disk_path[disk]), "%s/disk%d.img", rig->dir, disk);
		make_disk(rig->disk_path[disk], disk ? 'B' : 'A');
		rig->values[disk][0] = (struct config_value){ .key = "plugin", .value = "dev-blk", .line = 2 };
		rig->values[disk][1] = (struct config_value){ .key = "path", .value = rig->disk_path[disk], .line = 3 };
		rig->sections[disk] = (struct config_section){
			.name = disk ? "good" : "hostile", .line = 1, .count = 2, .values = rig->values[disk],
		};
		if (device__create(&rig->search, &rig->sections[disk], "test.ini", rig->dir, &device, &err) != 0 ||
		    device__attach(&rig->vm, device, (size_t)disk, &err) != 0)
			fail_msg("attaching disk %d failed: %s", disk, err.message);
	}
	*state = rig;
	return 0;
}

static int teardown(void **state)
{
	struct rig *rig = *state;
	char path[160];

	event_loop__stop(&rig->vm.events);
	for (size_t i = 0; i < rig->vm.device_count; i++)
		device__destroy(rig->vm.devices[i]);
	free(rig->vm.devices);
	io_bus__destroy(&rig->vm.mmio);
	plugin_search__free(&rig->search);
	testvm__destroy(&rig->t);
	for (int disk = 0; disk < 2; disk++)
		unlink(rig->disk_path[disk]);
	snprintf(path, sizeof(path), "%s", rig->dir);
	rmdir(path);
	free(rig);
	return 0;
}

/* Run the guest's script; MMIO exits go to the transports, as the core's vCPU loop does. */
static void run_script(struct rig *rig)
{
	struct smcore_exit exit;
	char description[160];

	for (int i = 0; i < 10000; i++) {
		assert_int_equal(testvm_ops.run_vcpu(rig->t.vcpu[0], &exit), 0);
		if (exit.reason == SMCORE_EXIT_MMIO) {
			io_bus__access(&rig->vm.mmio, exit.mmio.gpa, exit.mmio.data, exit.mmio.len,
				       exit.mmio.is_write);
			continue;
		}
		if (exit.reason == SMCORE_EXIT_IO && exit.io.port == DONE_PORT)
			return;
		fail_msg("unexpected exit: %s", testvm__describe_exit(&exit, description, sizeof(description)));
	}
	fail_msg("the guest did not finish its script");
}

/* Wait up to 5 s for the device threads: `done` returns true when they finished. */
static bool wait_for(struct rig *rig, bool (*done)(struct rig *rig))
{
	struct timespec pause = { 0, 2 * 1000 * 1000 };

	for (int i = 0; i < 2500; i++) {
		if (done(rig))
			return true;
		nanosleep(&pause, NULL);
	}
	return done(rig);
}

static bool both_settled(struct rig *rig)
{
	return get16(rig, layouts[1].used + 2) == 1 &&
	       (read_register(rig, 0, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
}

/* The hostile rings; each breaks disk 0's queue in its own way. */
enum hostile_kind { LOOP, OUTSIDE_RAM, AVAIL_JUMP, NESTED_INDIRECT, WRAPPING_LENGTH };

static void write_hostile_ring(struct rig *rig, enum hostile_kind kind)
{
	const struct ring_layout *l = &layouts[0];
	struct blk_header header = { .type = 0, .sector = 0 };

	memcpy(rig->t.memory + l->header, &header, sizeof(header));
	switch (kind) {
	case LOOP:
		put_desc(rig, l->desc, 0, l->header, sizeof(header), VIRTQ_DESC_F_NEXT, 1);
		put_desc(rig, l->desc, 1, l->data, 512, VIRTQ_DESC_F_NEXT, 0);
		make_available(rig, 0, 0, 1);
		break;
	case OUTSIDE_RAM:
		put_desc(rig, l->desc, 0, l->header, sizeof(header), VIRTQ_DESC_F_NEXT, 1);
		put_desc(rig, l->desc, 1, 0x7fff0000, 512, VIRTQ_DESC_F_WRITE, 0);
		make_available(rig, 0, 0, 1);
		break;
	case AVAIL_JUMP:
		put_desc(rig, l->desc, 0, l->header, sizeof(header), 0, 0);
		make_available(rig, 0, 0, 1000);
		break;
	case NESTED_INDIRECT:
		/* desc 0 points at a table whose only entry is itself indirect. */
		put_desc(rig, l->desc, 0, l->desc + 0x800, 16, VIRTQ_DESC_F_INDIRECT, 0);
		put_desc(rig, l->desc + 0x800, 0, l->desc + 0x800, 16, VIRTQ_DESC_F_INDIRECT, 0);
		make_available(rig, 0, 0, 1);
		break;
	case WRAPPING_LENGTH:
		put_desc(rig, l->desc, 0, 0xfffffffffffff000ull, 0x2000, VIRTQ_DESC_F_WRITE, 0);
		make_available(rig, 0, 0, 1);
		break;
	}
}

static void hostile_ring_spares_other_disk(void **state, enum hostile_kind kind)
{
	struct rig *rig = *state;
	uint64_t script[256];
	size_t n = 0;
	char expected[512];

	write_hostile_ring(rig, kind);
	write_good_request(rig, 1);
	n = script_device(script, n, 0);
	n = script_device(script, n, 1);
	script[n++] = 0;
	script[n++] = 0;
	memcpy(rig->t.memory + SCRIPT_GPA, script, n * sizeof(script[0]));
	assert_int_equal(testvm__start(&rig->t, 0, guest_mmio_script, &(struct testvm_args){ .rbx = SCRIPT_GPA }), 0);

	run_script(rig);
	if (!wait_for(rig, both_settled))
		fail_msg("after 5 s: good disk used index %u, hostile disk status 0x%x",
			 get16(rig, layouts[1].used + 2), read_register(rig, 0, VIRTIO_MMIO_STATUS));

	/* The good disk served its read from the file. */
	assert_int_equal(rig->t.memory[layouts[1].status], 0);
	memset(expected, 'B', sizeof(expected));
	snprintf(expected, sizeof(expected), "disk %c, sector 0", 'B');
	assert_memory_equal(rig->t.memory + layouts[1].data, expected, sizeof(expected));
	assert_false(read_register(rig, 1, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	/* The hostile disk returned nothing and wrote nothing into guest RAM. */
	assert_int_equal(get16(rig, layouts[0].used + 2), 0);
	assert_true(read_register(rig, 0, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_MMIO_INT_CONFIG);
}

static void test_descriptor_loop(void **state)
{
	hostile_ring_spares_other_disk(state, LOOP);
}

static void test_address_outside_ram(void **state)
{
	hostile_ring_spares_other_disk(state, OUTSIDE_RAM);
}

static void test_avail_index_jump(void **state)
{
	hostile_ring_spares_other_disk(state, AVAIL_JUMP);
}

static void test_nested_indirect(void **state)
{
	hostile_ring_spares_other_disk(state, NESTED_INDIRECT);
}

static void test_wrapping_length(void **state)
{
	hostile_ring_spares_other_disk(state, WRAPPING_LENGTH);
}

static bool hostile_disk_served(struct rig *rig)
{
	return get16(rig, layouts[0].used + 2) == 1;
}

/* After a reset by the driver, the broken disk works again. */
static void test_reset_recovers(void **state)
{
	struct rig *rig = *state;
	uint64_t script[128];
	size_t n;
	char expected[512];

	test_descriptor_loop(state);

	write_good_request(rig, 0);
	n = script_device(script, 0, 0);
	script[n++] = 0;
	script[n++] = 0;
	memcpy(rig->t.memory + SCRIPT_GPA, script, n * sizeof(script[0]));
	assert_int_equal(testvm__start(&rig->t, 0, guest_mmio_script, &(struct testvm_args){ .rbx = SCRIPT_GPA }), 0);
	run_script(rig);
	if (!wait_for(rig, hostile_disk_served))
		fail_msg("after reset, the disk did not serve a good read: status 0x%x",
			 read_register(rig, 0, VIRTIO_MMIO_STATUS));
	assert_int_equal(rig->t.memory[layouts[0].status], 0);
	memset(expected, 'A', sizeof(expected));
	snprintf(expected, sizeof(expected), "disk %c, sector 0", 'A');
	assert_memory_equal(rig->t.memory + layouts[0].data, expected, sizeof(expected));
	assert_false(read_register(rig, 0, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_descriptor_loop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_address_outside_ram, setup, teardown),
		cmocka_unit_test_setup_teardown(test_avail_index_jump, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nested_indirect, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrapping_length, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset_recovers, setup, teardown),
	};
	char reason[512];

	if (testvm__check_kvm(reason, sizeof(reason))) {
		printf("SKIP: /dev/kvm not available: %s\n", reason);
		return SKIP_EXIT_CODE;
	}
	if (testvm__load_plugin(testvm__plugin_path(), reason, sizeof(reason))) {
		fprintf(stderr, "kvm_devices: cannot load the plugin: %s\n", reason);
		return 1;
	}
	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
