/* deploy/demo/vm.c — the workload `make demo` profiles and rebuilds.
 *
 * A small stack-bytecode interpreter with a string-keyed hash table, driven
 * by programs the binary generates from a seed. A few opcodes and the
 * table's lookup path are hot; most of the big dispatch switch, the error
 * checks and the resize/rehash paths are cold. Static heuristics cannot
 * know which: that is what the profile tells the compiler.
 *
 * usage: vm [ROUNDS] [SEED]     prints one checksum line; deterministic.
 */
/*
 * Not formatted by clang-format (make format, tests/format): sample
 * profiles count by source line, so this file's line layout (several
 * statements on one line in the dispatch loop) is part of the workload
 * the demo and docs/profile-quality.md measure.
 */
/* clang-format off */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- strings -------------------------------------------------------- */

typedef struct {
	char *p;
	uint32_t len, cap;
} str_t;

static void str_reserve(str_t *s, uint32_t need)
{
	if (need <= s->cap)
		return;
	uint32_t cap = s->cap ? s->cap : 16;
	while (cap < need)
		cap *= 2;
	char *p = realloc(s->p, cap);
	if (!p) {
		fprintf(stderr, "out of memory\n");
		exit(2);
	}
	s->p = p;
	s->cap = cap;
}

static void str_set(str_t *s, const char *p, uint32_t n)
{
	str_reserve(s, n + 1);
	memcpy(s->p, p, n);
	s->p[n] = 0;
	s->len = n;
}

static void str_cat(str_t *s, const char *p, uint32_t n)
{
	str_reserve(s, s->len + n + 1);
	memcpy(s->p + s->len, p, n);
	s->len += n;
	s->p[s->len] = 0;
}

static void str_upper(str_t *s)
{
	for (uint32_t i = 0; i < s->len; i++) {
		char c = s->p[i];
		if (c >= 'a' && c <= 'z')
			s->p[i] = (char)(c - 32);
		else if (c == ' ')
			s->p[i] = '_';
	}
}

static void str_reverse(str_t *s)
{
	for (uint32_t i = 0, j = s->len ? s->len - 1 : 0; i < j; i++, j--) {
		char t = s->p[i];
		s->p[i] = s->p[j];
		s->p[j] = t;
	}
}

static uint32_t str_hash(const char *p, uint32_t n)
{
	uint32_t h = 2166136261u;
	for (uint32_t i = 0; i < n; i++) {
		h ^= (uint8_t)p[i];
		h *= 16777619u;
	}
	return h;
}

/* ---- hash table: string -> int64, chained ------------------------ */

typedef struct entry {
	struct entry *next;
	uint32_t hash, klen;
	int64_t val;
	char key[];
} entry_t;

typedef struct {
	entry_t **b;
	uint32_t nb, n;
	uint64_t probes, misses, resizes;
} table_t;

static void tab_init(table_t *t, uint32_t nb)
{
	t->b = calloc(nb, sizeof *t->b);
	if (!t->b) {
		fprintf(stderr, "out of memory\n");
		exit(2);
	}
	t->nb = nb;
	t->n = 0;
	t->probes = t->misses = t->resizes = 0;
}

static void tab_free(table_t *t)
{
	for (uint32_t i = 0; i < t->nb; i++)
		for (entry_t *e = t->b[i], *nx; e; e = nx) {
			nx = e->next;
			free(e);
		}
	free(t->b);
}

static void tab_grow(table_t *t)
{
	uint32_t nb = t->nb * 2;
	entry_t **b = calloc(nb, sizeof *b);
	if (!b) {
		fprintf(stderr, "out of memory\n");
		exit(2);
	}
	for (uint32_t i = 0; i < t->nb; i++)
		for (entry_t *e = t->b[i], *nx; e; e = nx) {
			nx = e->next;
			e->next = b[e->hash & (nb - 1)];
			b[e->hash & (nb - 1)] = e;
		}
	free(t->b);
	t->b = b;
	t->nb = nb;
	t->resizes++;
}

static entry_t *tab_find(table_t *t, const char *k, uint32_t n, uint32_t h)
{
	for (entry_t *e = t->b[h & (t->nb - 1)]; e; e = e->next) {
		t->probes++;
		if (e->hash == h && e->klen == n && memcmp(e->key, k, n) == 0)
			return e;
	}
	t->misses++;
	return NULL;
}

static entry_t *tab_put(table_t *t, const char *k, uint32_t n, int64_t v)
{
	uint32_t h = str_hash(k, n);
	entry_t *e = tab_find(t, k, n, h);
	if (e) {
		e->val = v;
		return e;
	}
	if (t->n >= t->nb)
		tab_grow(t);
	e = malloc(sizeof *e + n + 1);
	if (!e) {
		fprintf(stderr, "out of memory\n");
		exit(2);
	}
	e->hash = h;
	e->klen = n;
	e->val = v;
	memcpy(e->key, k, n);
	e->key[n] = 0;
	e->next = t->b[h & (t->nb - 1)];
	t->b[h & (t->nb - 1)] = e;
	t->n++;
	return e;
}

static int64_t tab_get(table_t *t, const char *k, uint32_t n, int64_t dflt)
{
	entry_t *e = tab_find(t, k, n, str_hash(k, n));
	return e ? e->val : dflt;
}

static int tab_del(table_t *t, const char *k, uint32_t n)
{
	uint32_t h = str_hash(k, n);
	for (entry_t **pp = &t->b[h & (t->nb - 1)]; *pp; pp = &(*pp)->next) {
		entry_t *e = *pp;
		if (e->hash == h && e->klen == n && memcmp(e->key, k, n) == 0) {
			*pp = e->next;
			free(e);
			t->n--;
			return 1;
		}
	}
	return 0;
}

/* ---- the VM --------------------------------------------------------- */

enum op {
	OP_HALT, OP_PUSH, OP_POP, OP_DUP, OP_SWAP, OP_OVER, OP_ROT,
	OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_MOD, OP_NEG, OP_ABS,
	OP_AND, OP_OR, OP_XOR, OP_SHL, OP_SHR, OP_NOT,
	OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE,
	OP_JMP, OP_JZ, OP_JNZ, OP_CALL, OP_RET,
	OP_LOAD, OP_STORE, OP_INC, OP_DEC, OP_LOADI,
	OP_SKEY, OP_SAPP, OP_SUP, OP_SREV, OP_SLEN, OP_SHASH,
	OP_TPUT, OP_TGET, OP_TDEL, OP_TCNT, OP_TINC,
	OP_MIX, OP_MIN, OP_MAX, OP_CLAMP, OP_SQRT, OP_POPCNT, OP_BSWAP,
	OP_PRINT, OP_ASSERT, OP_TRAP, OP_NOP,
	OP__COUNT
};

typedef struct {
	uint8_t op;
	int32_t arg;
} insn_t;

#define STACK 256
#define NVARS 16
#define NWORDS 64

typedef struct {
	int64_t st[STACK];
	int sp;
	int64_t var[NVARS];
	int rs[64];
	int rsp;
	str_t s;
	table_t tab;
	uint64_t steps, out;
	const char *words[NWORDS];
	uint32_t wlen[NWORDS];
} vm_t;

static void vm_fail(vm_t *vm, const char *what, int pc)
{
	fprintf(stderr, "vm: %s at pc %d (sp %d, steps %llu)\n", what, pc,
		vm->sp, (unsigned long long)vm->steps);
	exit(3);
}

static int64_t isqrt64(int64_t v)
{
	if (v <= 0)
		return 0;
	uint64_t x = (uint64_t)v, r = 0, b = 1ull << 62;
	while (b > x)
		b >>= 2;
	while (b) {
		if (x >= r + b) {
			x -= r + b;
			r = (r >> 1) + b;
		} else {
			r >>= 1;
		}
		b >>= 2;
	}
	return (int64_t)r;
}

#define NEED(n) \
	do { if (vm->sp < (n)) vm_fail(vm, "stack underflow", pc - 1); } while (0)
#define ROOM(n) \
	do { if (vm->sp + (n) > STACK) vm_fail(vm, "stack overflow", pc - 1); } while (0)
#define TOP vm->st[vm->sp - 1]
#define SEC vm->st[vm->sp - 2]
#define BIN(expr) \
	do { NEED(2); int64_t b_ = TOP, a_ = SEC; (void)a_; (void)b_; \
	     vm->sp--; TOP = (expr); } while (0)

static int64_t vm_run(vm_t *vm, const insn_t *code, int ncode)
{
	int pc = 0;
	for (;;) {
		if (pc < 0 || pc >= ncode)
			vm_fail(vm, "pc out of range", pc);
		insn_t in = code[pc++];
		vm->steps++;
		switch (in.op) {
		case OP_HALT:
			return vm->sp ? TOP : 0;
		case OP_PUSH:
			ROOM(1);
			vm->st[vm->sp++] = in.arg;
			break;
		case OP_POP:
			NEED(1);
			vm->sp--;
			break;
		case OP_DUP:
			NEED(1);
			ROOM(1);
			vm->st[vm->sp] = TOP;
			vm->sp++;
			break;
		case OP_SWAP: {
			NEED(2);
			int64_t t = TOP;
			TOP = SEC;
			SEC = t;
			break;
		}
		case OP_OVER:
			NEED(2);
			ROOM(1);
			vm->st[vm->sp] = SEC;
			vm->sp++;
			break;
		case OP_ROT: {
			NEED(3);
			int64_t a = vm->st[vm->sp - 3];
			vm->st[vm->sp - 3] = SEC;
			SEC = TOP;
			TOP = a;
			break;
		}
		case OP_ADD: BIN(a_ + b_); break;
		case OP_SUB: BIN(a_ - b_); break;
		case OP_MUL: BIN((int64_t)((uint64_t)a_ * (uint64_t)b_)); break;
		case OP_DIV:
			NEED(2);
			if (TOP == 0)
				vm_fail(vm, "division by zero", pc - 1);
			BIN(b_ == -1 ? -a_ : a_ / b_);
			break;
		case OP_MOD:
			NEED(2);
			if (TOP == 0)
				vm_fail(vm, "modulo by zero", pc - 1);
			BIN(b_ == -1 ? 0 : a_ % b_);
			break;
		case OP_NEG: NEED(1); TOP = -TOP; break;
		case OP_ABS: NEED(1); if (TOP < 0) TOP = -TOP; break;
		case OP_AND: BIN(a_ & b_); break;
		case OP_OR: BIN(a_ | b_); break;
		case OP_XOR: BIN(a_ ^ b_); break;
		case OP_SHL: BIN((int64_t)((uint64_t)a_ << (b_ & 63))); break;
		case OP_SHR: BIN((int64_t)((uint64_t)a_ >> (b_ & 63))); break;
		case OP_NOT: NEED(1); TOP = ~TOP; break;
		case OP_EQ: BIN(a_ == b_); break;
		case OP_NE: BIN(a_ != b_); break;
		case OP_LT: BIN(a_ < b_); break;
		case OP_LE: BIN(a_ <= b_); break;
		case OP_GT: BIN(a_ > b_); break;
		case OP_GE: BIN(a_ >= b_); break;
		case OP_JMP:
			pc = in.arg;
			break;
		case OP_JZ:
			NEED(1);
			if (vm->st[--vm->sp] == 0)
				pc = in.arg;
			break;
		case OP_JNZ:
			NEED(1);
			if (vm->st[--vm->sp] != 0)
				pc = in.arg;
			break;
		case OP_CALL:
			if (vm->rsp >= 64)
				vm_fail(vm, "call depth", pc - 1);
			vm->rs[vm->rsp++] = pc;
			pc = in.arg;
			break;
		case OP_RET:
			if (vm->rsp <= 0)
				vm_fail(vm, "return without call", pc - 1);
			pc = vm->rs[--vm->rsp];
			break;
		case OP_LOAD:
			ROOM(1);
			if ((unsigned)in.arg >= NVARS)
				vm_fail(vm, "bad variable", pc - 1);
			vm->st[vm->sp++] = vm->var[in.arg];
			break;
		case OP_STORE:
			NEED(1);
			if ((unsigned)in.arg >= NVARS)
				vm_fail(vm, "bad variable", pc - 1);
			vm->var[in.arg] = vm->st[--vm->sp];
			break;
		case OP_INC:
			if ((unsigned)in.arg >= NVARS)
				vm_fail(vm, "bad variable", pc - 1);
			vm->var[in.arg]++;
			break;
		case OP_DEC:
			if ((unsigned)in.arg >= NVARS)
				vm_fail(vm, "bad variable", pc - 1);
			vm->var[in.arg]--;
			break;
		case OP_LOADI: {
			NEED(1);
			if ((unsigned)in.arg >= NVARS)
				vm_fail(vm, "bad variable", pc - 1);
			TOP = vm->var[(uint64_t)TOP % NVARS] + in.arg;
			break;
		}
		case OP_SKEY: { /* s = words[pop % NWORDS] */
			NEED(1);
			uint64_t i = (uint64_t)vm->st[--vm->sp] % NWORDS;
			str_set(&vm->s, vm->words[i], vm->wlen[i]);
			break;
		}
		case OP_SAPP: { /* s += words[pop % NWORDS] */
			NEED(1);
			uint64_t i = (uint64_t)vm->st[--vm->sp] % NWORDS;
			str_cat(&vm->s, "-", 1);
			str_cat(&vm->s, vm->words[i], vm->wlen[i]);
			break;
		}
		case OP_SUP:
			str_upper(&vm->s);
			break;
		case OP_SREV:
			str_reverse(&vm->s);
			break;
		case OP_SLEN:
			ROOM(1);
			vm->st[vm->sp++] = vm->s.len;
			break;
		case OP_SHASH:
			ROOM(1);
			vm->st[vm->sp++] = str_hash(vm->s.p, vm->s.len);
			break;
		case OP_TPUT:
			NEED(1);
			tab_put(&vm->tab, vm->s.p, vm->s.len, vm->st[--vm->sp]);
			break;
		case OP_TGET:
			ROOM(1);
			vm->st[vm->sp++] = tab_get(&vm->tab, vm->s.p, vm->s.len, -1);
			break;
		case OP_TDEL:
			ROOM(1);
			vm->st[vm->sp++] = tab_del(&vm->tab, vm->s.p, vm->s.len);
			break;
		case OP_TCNT:
			ROOM(1);
			vm->st[vm->sp++] = vm->tab.n;
			break;
		case OP_TINC: { /* table[s] += pop */
			NEED(1);
			uint32_t h = str_hash(vm->s.p, vm->s.len);
			entry_t *e = tab_find(&vm->tab, vm->s.p, vm->s.len, h);
			int64_t d = vm->st[--vm->sp];
			if (e)
				e->val += d;
			else
				tab_put(&vm->tab, vm->s.p, vm->s.len, d);
			break;
		}
		case OP_MIX: {
			NEED(1);
			uint64_t x = (uint64_t)TOP;
			x ^= x >> 33;
			x *= 0xff51afd7ed558ccdull;
			x ^= x >> 33;
			x *= 0xc4ceb9fe1a85ec53ull;
			x ^= x >> 33;
			TOP = (int64_t)(x >> 1);
			break;
		}
		case OP_MIN: BIN(a_ < b_ ? a_ : b_); break;
		case OP_MAX: BIN(a_ > b_ ? a_ : b_); break;
		case OP_CLAMP: {
			NEED(1);
			int64_t lo = -(int64_t)in.arg, hi = in.arg;
			if (TOP < lo)
				TOP = lo;
			else if (TOP > hi)
				TOP = hi;
			break;
		}
		case OP_SQRT: NEED(1); TOP = isqrt64(TOP); break;
		case OP_POPCNT: NEED(1); TOP = __builtin_popcountll((uint64_t)TOP); break;
		case OP_BSWAP: NEED(1); TOP = (int64_t)__builtin_bswap64((uint64_t)TOP); break;
		case OP_PRINT:
			NEED(1);
			vm->out = vm->out * 31 + (uint64_t)vm->st[--vm->sp];
			break;
		case OP_ASSERT:
			NEED(1);
			if (vm->st[--vm->sp] == 0)
				vm_fail(vm, "assertion failed", pc - 1);
			break;
		case OP_TRAP:
			vm_fail(vm, "trap", pc - 1);
			break;
		case OP_NOP:
			break;
		default:
			vm_fail(vm, "bad opcode", pc - 1);
		}
	}
}

/* ---- the programs --------------------------------------------------- */

typedef struct {
	insn_t *c;
	int n, cap;
} prog_t;

static int emit(prog_t *p, int op, int32_t arg)
{
	if (p->n == p->cap) {
		p->cap = p->cap ? p->cap * 2 : 256;
		p->c = realloc(p->c, (size_t)p->cap * sizeof *p->c);
		if (!p->c) {
			fprintf(stderr, "out of memory\n");
			exit(2);
		}
	}
	p->c[p->n].op = (uint8_t)op;
	p->c[p->n].arg = arg;
	return p->n++;
}

static uint64_t rng;
static uint32_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng >> 11);
}

/* Program A: word counting. for i in 0..N: key = words[mix(i) % K]
 * (skewed), maybe append a second word, table[key] += 1. Hot: LOAD, PUSH,
 * MIX, MOD, SKEY, TINC, INC, LT, JNZ. */
static void gen_count(prog_t *p, int n, int skew)
{
	emit(p, OP_PUSH, 0);
	emit(p, OP_STORE, 0); /* i = 0 */
	int top = emit(p, OP_LOAD, 0);
	emit(p, OP_MIX, 0);
	emit(p, OP_PUSH, skew);
	emit(p, OP_MOD, 0);
	emit(p, OP_DUP, 0);
	emit(p, OP_SKEY, 0);
	emit(p, OP_PUSH, 7);
	emit(p, OP_LT, 0); /* small keys get a suffix */
	int jz = emit(p, OP_JZ, 0);
	emit(p, OP_LOAD, 0);
	emit(p, OP_PUSH, 3);
	emit(p, OP_AND, 0);
	emit(p, OP_SAPP, 0);
	p->c[jz].arg = p->n;
	emit(p, OP_PUSH, 1);
	emit(p, OP_TINC, 0);
	emit(p, OP_INC, 0);
	emit(p, OP_LOAD, 0);
	emit(p, OP_PUSH, n);
	emit(p, OP_LT, 0);
	emit(p, OP_JNZ, top);
	emit(p, OP_TCNT, 0);
	emit(p, OP_PRINT, 0);
}

/* Program B: arithmetic kernel with a subroutine: acc = f(acc, i) with
 * a few cheap ops; rarely (1/64) probes the table. */
static void gen_arith(prog_t *p, int n)
{
	int jmp = emit(p, OP_JMP, 0);
	/* sub: ( x -- y ) */
	int sub = emit(p, OP_DUP, 0);
	emit(p, OP_PUSH, 5);
	emit(p, OP_SHL, 0);
	emit(p, OP_XOR, 0);
	emit(p, OP_PUSH, 1000003);
	emit(p, OP_ADD, 0);
	emit(p, OP_RET, 0);
	p->c[jmp].arg = p->n;
	emit(p, OP_PUSH, 0);
	emit(p, OP_STORE, 1);
	emit(p, OP_PUSH, 1);
	emit(p, OP_STORE, 2);
	int top = emit(p, OP_LOAD, 2);
	emit(p, OP_LOAD, 1);
	emit(p, OP_ADD, 0);
	emit(p, OP_CALL, sub);
	emit(p, OP_PUSH, 0x7fffffff);
	emit(p, OP_AND, 0);
	emit(p, OP_STORE, 2);
	emit(p, OP_LOAD, 1);
	emit(p, OP_PUSH, 63);
	emit(p, OP_AND, 0);
	int jnz = emit(p, OP_JNZ, 0);
	emit(p, OP_LOAD, 2);
	emit(p, OP_SKEY, 0);
	emit(p, OP_TGET, 0);
	emit(p, OP_LOAD, 3);
	emit(p, OP_ADD, 0);
	emit(p, OP_STORE, 3);
	p->c[jnz].arg = p->n;
	emit(p, OP_INC, 1);
	emit(p, OP_LOAD, 1);
	emit(p, OP_PUSH, n);
	emit(p, OP_LT, 0);
	emit(p, OP_JNZ, top);
	emit(p, OP_LOAD, 2);
	emit(p, OP_LOAD, 3);
	emit(p, OP_ADD, 0);
	emit(p, OP_PRINT, 0);
}

/* Program C: random straight-line code over the cold opcodes, run once:
 * makes every case reachable (so nothing is dead code) but cold. */
static void gen_cold(prog_t *p, int n)
{
	static const uint8_t ops[] = {
		OP_NEG, OP_ABS, OP_NOT, OP_POPCNT, OP_BSWAP, OP_SQRT, OP_CLAMP,
		OP_MIN, OP_MAX, OP_OR, OP_SUB, OP_SHR, OP_EQ, OP_NE, OP_LE,
		OP_GT, OP_GE, OP_SWAP, OP_OVER, OP_ROT, OP_NOP, OP_DIV,
		OP_SREV, OP_SUP, OP_SLEN, OP_SHASH, OP_TDEL, OP_LOADI, OP_DEC,
	};
	emit(p, OP_PUSH, 11);
	emit(p, OP_PUSH, 22);
	emit(p, OP_PUSH, 33);
	for (int i = 0; i < n; i++) {
		int op = ops[rnd() % sizeof ops];
		switch (op) {
		case OP_MIN: case OP_MAX: case OP_OR: case OP_SUB: case OP_SHR:
		case OP_EQ: case OP_NE: case OP_LE: case OP_GT: case OP_GE:
			emit(p, OP_PUSH, (int32_t)(rnd() % 1000) + 1);
			emit(p, op, 0);
			break;
		case OP_DIV:
			emit(p, OP_PUSH, (int32_t)(rnd() % 9) + 1);
			emit(p, op, 0);
			break;
		case OP_SLEN: case OP_SHASH: case OP_TDEL:
			emit(p, op, 0);
			emit(p, OP_ADD, 0);
			break;
		case OP_SREV: case OP_SUP:
			emit(p, OP_PUSH, (int32_t)(rnd() % NWORDS));
			emit(p, OP_SKEY, 0);
			emit(p, op, 0);
			break;
		case OP_CLAMP:
			emit(p, op, 100000);
			break;
		case OP_LOADI: case OP_DEC:
			emit(p, op, (int32_t)(rnd() % NVARS));
			break;
		case OP_ROT: case OP_SWAP: case OP_OVER:
			emit(p, op, 0);
			if (op == OP_OVER)
				emit(p, OP_XOR, 0);
			break;
		default:
			emit(p, op, 0);
		}
	}
	emit(p, OP_PRINT, 0);
	emit(p, OP_PRINT, 0);
	emit(p, OP_PUSH, 1);
	emit(p, OP_ASSERT, 0);
}

static const char *const syll[] = {
	"ka", "lo", "mi", "nu", "pe", "ra", "si", "to", "ve", "zu",
	"bra", "cle", "dro", "fli", "gru", "pla", "stri", "thon",
};

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 48;
	rng = argc > 2 ? strtoull(argv[2], NULL, 0) : 0x9e3779b97f4a7c15ull;
	if (rounds <= 0 || !rng) {
		fprintf(stderr, "usage: vm [ROUNDS>0] [SEED!=0]\n");
		return 2;
	}

	static char wordbuf[NWORDS][32];
	vm_t *vm = calloc(1, sizeof *vm);
	if (!vm)
		return 2;
	for (int i = 0; i < NWORDS; i++) {
		int k = 1 + (int)(rnd() % 4), len = 0;
		for (int j = 0; j < k; j++)
			len += snprintf(wordbuf[i] + len, sizeof wordbuf[i] - (size_t)len,
					"%s", syll[rnd() % (sizeof syll / sizeof *syll)]);
		vm->words[i] = wordbuf[i];
		vm->wlen[i] = (uint32_t)len;
	}

	uint64_t sum = 0;
	for (int r = 0; r < rounds; r++) {
		prog_t p = {0};
		gen_count(&p, 200000 + (int)(rnd() % 1000), 40 + (int)(rnd() % 24));
		gen_arith(&p, 400000);
		gen_cold(&p, 300);
		emit(&p, OP_HALT, 0);
		tab_init(&vm->tab, 8);
		vm->sp = vm->rsp = 0;
		memset(vm->var, 0, sizeof vm->var);
		int64_t res = vm_run(vm, p.c, p.n);
		sum = sum * 1099511628211ull ^ (uint64_t)res ^ vm->out ^
		      (vm->tab.probes << 7) ^ vm->tab.n;
		tab_free(&vm->tab);
		free(p.c);
	}
	printf("checksum %016llx steps %llu\n", (unsigned long long)sum,
	       (unsigned long long)vm->steps);
	free(vm->s.p);
	free(vm);
	return 0;
}
/* clang-format on */
