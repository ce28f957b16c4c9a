/* SPDX-License-Identifier: Apache-2.0 */
/* Split virtqueue parsing against hostile and well-formed rings in real guest RAM. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "guest_memory.h"
#include "virtqueue.h"

#define RAM_SIZE (16ull << 20)
#define QUEUE_SIZE 8
#define DESC_GPA 0x1000ull
#define AVAIL_GPA 0x2000ull
#define USED_GPA 0x3000ull
#define TABLE_GPA 0x4000ull
#define DATA_GPA 0x10000ull
#define MAX_IOV 16

struct fixture {
	struct guest_memory mem;
	struct virtqueue vq;
};

static int setup(void **state)
{
	struct fixture *fixture = calloc(1, sizeof(*fixture));

	assert_non_null(fixture);
	assert_int_equal(guest_memory__init(&fixture->mem, RAM_SIZE), 0);
	fixture->vq = (struct virtqueue){
		.index = 3, .size = QUEUE_SIZE,
		.desc_gpa = DESC_GPA, .avail_gpa = AVAIL_GPA, .used_gpa = USED_GPA,
	};
	*state = fixture;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fixture = *state;

	guest_memory__destroy(&fixture->mem);
	free(fixture);
	return 0;
}

static void write_desc(struct guest_memory *mem, uint64_t table, uint16_t index, uint64_t addr,
		       uint32_t len, uint16_t flags, uint16_t next)
{
	struct virtq_desc desc = { .addr = addr, .len = len, .flags = flags, .next = next };

	assert_int_equal(guest_memory__write(mem, table + 16ull * index, &desc, sizeof(desc)), 0);
}

static void set_avail_idx(struct guest_memory *mem, uint16_t idx)
{
	assert_int_equal(guest_memory__write(mem, AVAIL_GPA + 2, &idx, sizeof(idx)), 0);
}

static uint16_t avail_idx(struct guest_memory *mem)
{
	uint16_t idx;

	assert_int_equal(guest_memory__read(mem, AVAIL_GPA + 2, &idx, sizeof(idx)), 0);
	return idx;
}

/* Append `head` to the available ring and publish it. */
static void publish(struct guest_memory *mem, uint16_t head)
{
	uint16_t idx = avail_idx(mem);

	assert_int_equal(guest_memory__write(mem, AVAIL_GPA + 4 + 2 * (idx % QUEUE_SIZE), &head,
					     sizeof(head)), 0);
	set_avail_idx(mem, idx + 1);
}

static uint16_t read16(struct guest_memory *mem, uint64_t gpa)
{
	uint16_t value;

	assert_int_equal(guest_memory__read(mem, gpa, &value, sizeof(value)), 0);
	return value;
}

static void write16(struct guest_memory *mem, uint64_t gpa, uint16_t value)
{
	assert_int_equal(guest_memory__write(mem, gpa, &value, sizeof(value)), 0);
}

/* ---- Hostile rings ---------------------------------------------------- */

static void build_loop(struct fixture *f)
{
	write_desc(&f->mem, DESC_GPA, 0, DATA_GPA, 16, VIRTQ_DESC_F_NEXT, 1);
	write_desc(&f->mem, DESC_GPA, 1, DATA_GPA, 16, VIRTQ_DESC_F_NEXT, 0);
	publish(&f->mem, 0);
}

static void build_too_long(struct fixture *f)
{
	for (uint16_t i = 0; i < QUEUE_SIZE; i++)
		write_desc(&f->mem, DESC_GPA, i, DATA_GPA, 16, VIRTQ_DESC_F_NEXT, (i + 1) % QUEUE_SIZE);
	publish(&f->mem, 2);
}

static void build_next_out_of_range(struct fixture *f)
{
	write_desc(&f->mem, DESC_GPA, 0, DATA_GPA, 16, VIRTQ_DESC_F_NEXT, QUEUE_SIZE);
	publish(&f->mem, 0);
}

static void build_head_out_of_range(struct fixture *f)
{
	publish(&f->mem, 0xffff);
}

static void build_buffer_past_ram(struct fixture *f)
{
	write_desc(&f->mem, DESC_GPA, 0, RAM_SIZE - 8, 16, 0, 0);
	publish(&f->mem, 0);
}

static void build_buffer_wraps(struct fixture *f)
{
	write_desc(&f->mem, DESC_GPA, 0, UINT64_MAX - 0xf, 0x20, 0, 0);
	publish(&f->mem, 0);
}

static void build_ring_partly_outside(struct fixture *f)
{
	f->vq.used_gpa = RAM_SIZE - 16;
	write_desc(&f->mem, DESC_GPA, 0, DATA_GPA, 16, 0, 0);
	publish(&f->mem, 0);
}

static void build_indirect_bad_length(struct fixture *f)
{
	write_desc(&f->mem, DESC_GPA, 0, TABLE_GPA, 24, VIRTQ_DESC_F_INDIRECT, 0);
	publish(&f->mem, 0);
}

static void build_indirect_past_ram(struct fixture *f)
{
	write_desc(&f->mem, DESC_GPA, 0, RAM_SIZE - 16, 32, VIRTQ_DESC_F_INDIRECT, 0);
	publish(&f->mem, 0);
}

static void build_nested_indirect(struct fixture *f)
{
	write_desc(&f->mem, DESC_GPA, 0, TABLE_GPA, 32, VIRTQ_DESC_F_INDIRECT, 0);
	write_desc(&f->mem, TABLE_GPA, 0, DATA_GPA, 16, VIRTQ_DESC_F_NEXT, 1);
	write_desc(&f->mem, TABLE_GPA, 1, TABLE_GPA + 0x100, 16, VIRTQ_DESC_F_INDIRECT, 0);
	publish(&f->mem, 0);
}

static void build_indirect_next_outside(struct fixture *f)
{
	write_desc(&f->mem, DESC_GPA, 0, TABLE_GPA, 32, VIRTQ_DESC_F_INDIRECT, 0);
	write_desc(&f->mem, TABLE_GPA, 0, DATA_GPA, 16, VIRTQ_DESC_F_NEXT, 2);
	publish(&f->mem, 0);
}

static void build_indirect_loop(struct fixture *f)
{
	write_desc(&f->mem, DESC_GPA, 0, TABLE_GPA, 32, VIRTQ_DESC_F_INDIRECT, 0);
	write_desc(&f->mem, TABLE_GPA, 0, DATA_GPA, 16, VIRTQ_DESC_F_NEXT, 1);
	write_desc(&f->mem, TABLE_GPA, 1, DATA_GPA, 16, VIRTQ_DESC_F_NEXT, 0);
	publish(&f->mem, 0);
}

static void build_avail_jump(struct fixture *f)
{
	write_desc(&f->mem, DESC_GPA, 0, DATA_GPA, 16, 0, 0);
	set_avail_idx(&f->mem, QUEUE_SIZE + 1);
}

static void build_writable_before_readable(struct fixture *f)
{
	write_desc(&f->mem, DESC_GPA, 0, DATA_GPA, 16, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
	write_desc(&f->mem, DESC_GPA, 1, DATA_GPA + 16, 16, 0, 0);
	publish(&f->mem, 0);
}

static void build_too_many_buffers(struct fixture *f)
{
	write_desc(&f->mem, DESC_GPA, 0, TABLE_GPA, 16 * (MAX_IOV + 1), VIRTQ_DESC_F_INDIRECT, 0);
	for (uint16_t i = 0; i <= MAX_IOV; i++)
		write_desc(&f->mem, TABLE_GPA, i, DATA_GPA, 16, i < MAX_IOV ? VIRTQ_DESC_F_NEXT : 0, i + 1);
	publish(&f->mem, 0);
}

struct hostile_case {
	const char *name;
	void (*build)(struct fixture *f);
	const char *reason; /* a substring of the broken reason */
};

static const struct hostile_case hostile_cases[] = {
	{ "descriptor loop", build_loop, "longer than the queue size" },
	{ "chain longer than queue", build_too_long, "longer than the queue size" },
	{ "next index out of range", build_next_out_of_range, "next index 8" },
	{ "head index out of range", build_head_out_of_range, "head index 65535" },
	{ "buffer past RAM", build_buffer_past_ram, "not in guest RAM" },
	{ "buffer wraps", build_buffer_wraps, "wraps around" },
	{ "ring partly outside RAM", build_ring_partly_outside, "used ring" },
	{ "indirect bad length", build_indirect_bad_length, "indirect table length 24" },
	{ "indirect past RAM", build_indirect_past_ram, "indirect table 0x" },
	{ "indirect inside indirect", build_nested_indirect, "inside the indirect table" },
	{ "indirect next outside table", build_indirect_next_outside, "outside the indirect table" },
	{ "indirect loop", build_indirect_loop, "loops" },
	{ "avail idx jump", build_avail_jump, "ahead of" },
	{ "writable before readable", build_writable_before_readable, "readable buffer after a writable" },
	{ "too many buffers", build_too_many_buffers, "more than 16 buffers" },
};

static void hostile_rings_break_queue(void **state)
{
	for (size_t i = 0; i < sizeof(hostile_cases) / sizeof(hostile_cases[0]); i++) {
		const struct hostile_case *c = &hostile_cases[i];
		struct fixture *f = *state;
		struct smcore_iovec iov[MAX_IOV];
		struct smcore_chain chain;
		struct sm_error err = { 0 };

		print_message("case: %s\n", c->name);
		teardown(state);
		setup(state);
		f = *state;
		c->build(f);

		assert_int_equal(virtqueue__pop(&f->vq, &f->mem, &chain, iov, MAX_IOV, &err), -EINVAL);
		assert_true(f->vq.broken);
		assert_non_null(strstr(f->vq.broken_reason, c->reason));
		assert_non_null(strstr(err.message, c->reason));
		assert_int_equal(f->vq.last_avail_idx, 0);

		/* A broken queue stays broken and never touches the ring again. */
		assert_int_equal(virtqueue__pop(&f->vq, &f->mem, &chain, iov, MAX_IOV, &err), -EINVAL);
		assert_int_equal(virtqueue__push(&f->vq, &f->mem, 0, 0), -EINVAL);
	}
}

static void layout_rejects_bad_size_and_alignment(void **state)
{
	struct fixture *f = *state;
	struct sm_error err = { 0 };

	assert_int_equal(virtqueue__check_layout(&f->vq, &f->mem, &err), 0);
	f->vq.size = 6;
	assert_int_equal(virtqueue__check_layout(&f->vq, &f->mem, &err), -EINVAL);
	assert_non_null(strstr(err.message, "invalid size 6"));
	f->vq.size = 0;
	assert_int_equal(virtqueue__check_layout(&f->vq, &f->mem, &err), -EINVAL);
	f->vq.size = QUEUE_SIZE;
	f->vq.desc_gpa = DESC_GPA + 8;
	assert_int_equal(virtqueue__check_layout(&f->vq, &f->mem, &err), -EINVAL);
	assert_non_null(strstr(err.message, "misaligned"));
	f->vq.desc_gpa = RAM_SIZE - 64;
	assert_int_equal(virtqueue__check_layout(&f->vq, &f->mem, &err), -EINVAL);
	assert_non_null(strstr(err.message, "descriptor table"));
}

/* ---- Well-formed rings ------------------------------------------------ */

static void empty_ring_pops_nothing(void **state)
{
	struct fixture *f = *state;
	struct smcore_iovec iov[MAX_IOV];
	struct smcore_chain chain;

	assert_int_equal(virtqueue__pop(&f->vq, &f->mem, &chain, iov, MAX_IOV, NULL), 0);
	assert_false(f->vq.broken);
}

static void three_descriptor_chain_pops(void **state)
{
	struct fixture *f = *state;
	struct smcore_iovec iov[MAX_IOV];
	struct smcore_chain chain;
	struct sm_error err = { 0 };

	write_desc(&f->mem, DESC_GPA, 5, DATA_GPA, 16, VIRTQ_DESC_F_NEXT, 2);
	write_desc(&f->mem, DESC_GPA, 2, DATA_GPA + 0x100, 512, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 7);
	write_desc(&f->mem, DESC_GPA, 7, DATA_GPA + 0x400, 1, VIRTQ_DESC_F_WRITE, 0);
	publish(&f->mem, 5);

	assert_int_equal(virtqueue__pop(&f->vq, &f->mem, &chain, iov, MAX_IOV, &err), 1);
	assert_int_equal(chain.queue, 3);
	assert_int_equal(chain.head, 5);
	assert_int_equal(chain.count, 3);
	assert_ptr_equal(chain.iov, iov);
	assert_ptr_equal(iov[0].base, guest_memory__hva(&f->mem, DATA_GPA, 16));
	assert_int_equal(iov[0].len, 16);
	assert_int_equal(iov[0].device_writable, 0);
	assert_ptr_equal(iov[1].base, guest_memory__hva(&f->mem, DATA_GPA + 0x100, 512));
	assert_int_equal(iov[1].len, 512);
	assert_int_equal(iov[1].device_writable, 1);
	assert_int_equal(iov[2].len, 1);
	assert_int_equal(iov[2].device_writable, 1);
	assert_int_equal(f->vq.last_avail_idx, 1);
	assert_int_equal(virtqueue__pop(&f->vq, &f->mem, &chain, iov, MAX_IOV, &err), 0);
}

static void indirect_chain_pops(void **state)
{
	struct fixture *f = *state;
	struct smcore_iovec iov[MAX_IOV];
	struct smcore_chain chain;
	struct sm_error err = { 0 };

	write_desc(&f->mem, DESC_GPA, 1, TABLE_GPA, 48, VIRTQ_DESC_F_INDIRECT, 0);
	write_desc(&f->mem, TABLE_GPA, 0, DATA_GPA, 16, VIRTQ_DESC_F_NEXT, 2);
	write_desc(&f->mem, TABLE_GPA, 2, DATA_GPA + 16, 32, VIRTQ_DESC_F_NEXT, 1);
	write_desc(&f->mem, TABLE_GPA, 1, DATA_GPA + 64, 8, VIRTQ_DESC_F_WRITE, 0);
	publish(&f->mem, 1);

	assert_int_equal(virtqueue__pop(&f->vq, &f->mem, &chain, iov, MAX_IOV, &err), 1);
	assert_int_equal(chain.head, 1);
	assert_int_equal(chain.count, 3);
	assert_int_equal(iov[0].len, 16);
	assert_int_equal(iov[1].len, 32);
	assert_ptr_equal(iov[1].base, guest_memory__hva(&f->mem, DATA_GPA + 16, 32));
	assert_int_equal(iov[2].len, 8);
	assert_int_equal(iov[2].device_writable, 1);
}

/* Linux puts indirect tables wherever kmalloc does, so 8-byte alignment must do. */
static void indirect_table_at_8_bytes_pops(void **state)
{
	struct fixture *f = *state;
	struct smcore_iovec iov[MAX_IOV];
	struct smcore_chain chain;
	struct sm_error err = { 0 };

	write_desc(&f->mem, DESC_GPA, 1, TABLE_GPA + 8, 32, VIRTQ_DESC_F_INDIRECT, 0);
	write_desc(&f->mem, TABLE_GPA + 8, 0, DATA_GPA, 16, VIRTQ_DESC_F_NEXT, 1);
	write_desc(&f->mem, TABLE_GPA + 8, 1, DATA_GPA + 64, 1, VIRTQ_DESC_F_WRITE, 0);
	publish(&f->mem, 1);

	assert_int_equal(virtqueue__pop(&f->vq, &f->mem, &chain, iov, MAX_IOV, &err), 1);
	assert_int_equal(chain.count, 2);
	assert_ptr_equal(iov[1].base, guest_memory__hva(&f->mem, DATA_GPA + 64, 1));
	assert_false(f->vq.broken);
}

static void push_writes_used_element(void **state)
{
	struct fixture *f = *state;
	struct virtq_used_elem elem;

	assert_int_equal(virtqueue__push(&f->vq, &f->mem, 5, 1234), 0);
	assert_int_equal(read16(&f->mem, USED_GPA + 2), 1);
	assert_int_equal(guest_memory__read(&f->mem, USED_GPA + 4, &elem, sizeof(elem)), 0);
	assert_int_equal(elem.id, 5);
	assert_int_equal(elem.len, 1234);

	assert_int_equal(virtqueue__push(&f->vq, &f->mem, QUEUE_SIZE, 0), -EINVAL);
	assert_int_equal(read16(&f->mem, USED_GPA + 2), 1);
}

static void indices_wrap_at_uint16(void **state)
{
	struct fixture *f = *state;
	struct smcore_iovec iov[MAX_IOV];
	struct smcore_chain chain;
	struct virtq_used_elem elem;

	f->vq.last_avail_idx = 0xffff;
	f->vq.used_idx = 0xffff;
	set_avail_idx(&f->mem, 0xffff);
	write_desc(&f->mem, DESC_GPA, 4, DATA_GPA, 16, 0, 0);
	write_desc(&f->mem, DESC_GPA, 6, DATA_GPA, 16, 0, 0);
	publish(&f->mem, 4);
	publish(&f->mem, 6);
	assert_int_equal(avail_idx(&f->mem), 1);

	assert_int_equal(virtqueue__pop(&f->vq, &f->mem, &chain, iov, MAX_IOV, NULL), 1);
	assert_int_equal(chain.head, 4);
	assert_int_equal(virtqueue__pop(&f->vq, &f->mem, &chain, iov, MAX_IOV, NULL), 1);
	assert_int_equal(chain.head, 6);
	assert_int_equal(f->vq.last_avail_idx, 1);
	assert_int_equal(virtqueue__pop(&f->vq, &f->mem, &chain, iov, MAX_IOV, NULL), 0);

	assert_int_equal(virtqueue__push(&f->vq, &f->mem, 4, 7), 0);
	assert_int_equal(read16(&f->mem, USED_GPA + 2), 0);
	assert_int_equal(guest_memory__read(&f->mem, USED_GPA + 4 + 8 * 7, &elem, sizeof(elem)), 0);
	assert_int_equal(elem.id, 4);
	assert_int_equal(elem.len, 7);
}

static void no_interrupt_flag_suppresses(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(virtqueue__push(&f->vq, &f->mem, 0, 0), 0);
	assert_true(virtqueue__needs_interrupt(&f->vq, &f->mem, 0));
	write16(&f->mem, AVAIL_GPA, VIRTQ_AVAIL_F_NO_INTERRUPT);
	assert_false(virtqueue__needs_interrupt(&f->vq, &f->mem, 0));
}

static void used_event_suppresses(void **state)
{
	struct fixture *f = *state;
	uint64_t used_event_gpa = AVAIL_GPA + 4 + 2 * QUEUE_SIZE;

	f->vq.event_idx = true;
	/* The flag is ignored once event index is negotiated. */
	write16(&f->mem, AVAIL_GPA, VIRTQ_AVAIL_F_NO_INTERRUPT);

	/* used_event 0: the driver wants an interrupt once entry 0 is used. */
	write16(&f->mem, used_event_gpa, 0);
	assert_int_equal(virtqueue__push(&f->vq, &f->mem, 0, 0), 0);
	assert_true(virtqueue__needs_interrupt(&f->vq, &f->mem, 0));

	/* used_event 3: no interrupt until the used index passes 3. */
	write16(&f->mem, used_event_gpa, 3);
	assert_int_equal(virtqueue__push(&f->vq, &f->mem, 0, 0), 0);
	assert_false(virtqueue__needs_interrupt(&f->vq, &f->mem, 1));
	assert_int_equal(virtqueue__push(&f->vq, &f->mem, 0, 0), 0);
	assert_int_equal(virtqueue__push(&f->vq, &f->mem, 0, 0), 0);
	assert_true(virtqueue__needs_interrupt(&f->vq, &f->mem, 2));
}

static void used_event_wraps(void **state)
{
	struct fixture *f = *state;
	uint64_t used_event_gpa = AVAIL_GPA + 4 + 2 * QUEUE_SIZE;

	f->vq.event_idx = true;
	f->vq.used_idx = 0xfffe;

	/* From 0xfffe to 0x0001 crosses 0xffff and 0x0000. */
	write16(&f->mem, used_event_gpa, 0xffff);
	for (int i = 0; i < 3; i++)
		assert_int_equal(virtqueue__push(&f->vq, &f->mem, 0, 0), 0);
	assert_int_equal(f->vq.used_idx, 1);
	assert_true(virtqueue__needs_interrupt(&f->vq, &f->mem, 0xfffe));

	write16(&f->mem, used_event_gpa, 0x0000);
	assert_true(virtqueue__needs_interrupt(&f->vq, &f->mem, 0xfffe));

	write16(&f->mem, used_event_gpa, 0x0001);
	assert_false(virtqueue__needs_interrupt(&f->vq, &f->mem, 0xfffe));

	write16(&f->mem, used_event_gpa, 0xfffd);
	assert_false(virtqueue__needs_interrupt(&f->vq, &f->mem, 0xfffe));

	assert_true(virtqueue__event_crossed(0xffff, 0x0000, 0xffff));
	assert_false(virtqueue__event_crossed(0x0000, 0x0000, 0xffff));
}

static void set_notify_updates_ring(void **state)
{
	struct fixture *f = *state;
	uint64_t avail_event_gpa = USED_GPA + 4 + 8 * QUEUE_SIZE;

	assert_false(virtqueue__set_notify(&f->vq, &f->mem, false));
	assert_int_equal(read16(&f->mem, USED_GPA), VIRTQ_USED_F_NO_NOTIFY);
	assert_false(virtqueue__set_notify(&f->vq, &f->mem, true));
	assert_int_equal(read16(&f->mem, USED_GPA), 0);

	write_desc(&f->mem, DESC_GPA, 0, DATA_GPA, 16, 0, 0);
	publish(&f->mem, 0);
	assert_true(virtqueue__set_notify(&f->vq, &f->mem, true));

	f->vq.event_idx = true;
	f->vq.last_avail_idx = 1;
	assert_false(virtqueue__set_notify(&f->vq, &f->mem, true));
	assert_int_equal(read16(&f->mem, avail_event_gpa), 1);
}

static void reset_clears_broken(void **state)
{
	struct fixture *f = *state;
	struct smcore_iovec iov[MAX_IOV];
	struct smcore_chain chain;

	build_loop(f);
	assert_int_equal(virtqueue__pop(&f->vq, &f->mem, &chain, iov, MAX_IOV, NULL), -EINVAL);
	virtqueue__reset(&f->vq);
	assert_false(f->vq.broken);
	assert_string_equal(f->vq.broken_reason, "");
	assert_int_equal(f->vq.last_avail_idx, 0);
	assert_int_equal(f->vq.size, QUEUE_SIZE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(hostile_rings_break_queue, setup, teardown),
		cmocka_unit_test_setup_teardown(layout_rejects_bad_size_and_alignment, setup, teardown),
		cmocka_unit_test_setup_teardown(empty_ring_pops_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(three_descriptor_chain_pops, setup, teardown),
		cmocka_unit_test_setup_teardown(indirect_chain_pops, setup, teardown),
		cmocka_unit_test_setup_teardown(indirect_table_at_8_bytes_pops, setup, teardown),
		cmocka_unit_test_setup_teardown(push_writes_used_element, setup, teardown),
		cmocka_unit_test_setup_teardown(indices_wrap_at_uint16, setup, teardown),
		cmocka_unit_test_setup_teardown(no_interrupt_flag_suppresses, setup, teardown),
		cmocka_unit_test_setup_teardown(used_event_suppresses, setup, teardown),
		cmocka_unit_test_setup_teardown(used_event_wraps, setup, teardown),
		cmocka_unit_test_setup_teardown(set_notify_updates_ring, setup, teardown),
		cmocka_unit_test_setup_teardown(reset_clears_broken, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
