"""bench/fdo/releases.py — the "next release" of each program (run.sh
--next-release; README.md, "Next release").

In a fleet the profile that builds release N+1 comes from release N's
samples. Release N here is the Debian source of programs.py; release N+1
is N plus the fixed patch series below, applied to a copy of N's
configured tree. Debian's archive has only bookworm's versions, so real
upstream pairs are not at hand: each series is written to look like a
release's changes to the program's hot code (the functions of fdod's
profile of base on the training set, prof.llvm.show of a run) and keeps the
program's behaviour, so every variant of N+1 prints what N's base prints
(the bench checks it).

An edit is one of:
  Replace(kind, path, why, (old, new)...)
                                       each old occurs exactly once in
                                       path and becomes new
  Rename(kind, paths, old, new, why)   every whole-word old in paths
  Move(kind, path, start, end, before, why, after=False)
                                       the text from start through end
                                       (both occur once) is cut and put
                                       back just before `before` (after
                                       it with after=True)
and its kind says what sort of change it is:
  hot-lines   lines inserted and removed inside a hot function
  rename      a hot function renamed (its callers follow)
  split       a hot function split in two (a part moved to a new function)
  new-path    a new hot path (code the old profile has never seen)
  reorder     functions moved within a file

A Release names its program and its edits, applied in order.
"""
import hashlib
import json
import os
import re

# Version of the series below: part of release N+1's configured-tree key,
# so any change here rebuilds every N+1 variant (N's are unaffected).
RELEASES_VERSION = 1

KINDS = ("hot-lines", "rename", "split", "new-path", "reorder")


class Failed(Exception):
    """An edit does not apply (its text is not where it should be)."""


class Replace:
    def __init__(self, kind, path, why, *pairs):
        self.kind, self.path, self.why, self.pairs = kind, path, why, pairs

    def apply(self, tree):
        text = read(tree, self.path)
        for old, new in self.pairs:
            n = text.count(old)
            if n != 1:
                raise Failed("%s: %s: the text to replace occurs %d times, not once (%s): %r"
                             % (self.kind, self.path, n, self.why, old[:60]))
            text = text.replace(old, new)
        write(tree, self.path, text)
        return [self.path]

    def key(self):
        return ["replace", self.kind, self.path, self.pairs]


class Rename:
    def __init__(self, kind, paths, old, new, why):
        self.kind, self.paths, self.old, self.new, self.why = kind, paths, old, new, why

    def apply(self, tree):
        word = re.compile(r"\b%s\b" % re.escape(self.old))
        for p in self.paths:
            text, n = word.subn(self.new, read(tree, p))
            if n == 0:
                raise Failed("rename: %s is not in %s (%s)" % (self.old, p, self.why))
            write(tree, p, text)
        return list(self.paths)

    def key(self):
        return ["rename", self.kind, self.paths, self.old, self.new]


class Move:
    def __init__(self, kind, path, start, end, before, why, after=False):
        self.kind, self.path, self.why = kind, path, why
        self.start, self.end, self.before, self.after = start, end, before, after

    def apply(self, tree):
        text = read(tree, self.path)
        for what, s in (("start", self.start), ("end", self.end), ("before", self.before)):
            if text.count(s) != 1:
                raise Failed("reorder: %s: the %s text occurs %d times, not once (%s)"
                             % (self.path, what, text.count(s), self.why))
        i = text.index(self.start)
        j = text.index(self.end) + len(self.end)
        if j <= i:
            raise Failed("reorder: %s: the end comes before the start (%s)"
                         % (self.path, self.why))
        block, rest = text[i:j], text[:i] + text[j:]
        k = rest.index(self.before) + (len(self.before) if self.after else 0)
        write(tree, self.path, rest[:k] + block + rest[k:])
        return [self.path]

    def key(self):
        return ["move", self.kind, self.path, self.start, self.end, self.before, self.after]


def read(tree, path):
    with open(os.path.join(tree, path), encoding="latin-1") as f:
        return f.read()


def write(tree, path, text):
    with open(os.path.join(tree, path), "w", encoding="latin-1") as f:
        f.write(text)


class Release:
    def __init__(self, program, edits):
        self.program = program
        self.edits = edits
        for e in edits:
            assert e.kind in KINDS, e.kind

    def key(self):
        """Changes with the version and with any edit's text."""
        return hashlib.sha256(json.dumps([RELEASES_VERSION] + [e.key() for e in self.edits])
                              .encode()).hexdigest()[:16]

    def apply(self, tree):
        """Apply every edit to tree, in order; the files changed."""
        changed = []
        for e in self.edits:
            for p in e.apply(tree):
                if p not in changed:
                    changed.append(p)
        return changed

    def renamed(self):
        """{old name: new name} of the renamed functions."""
        return {e.old: e.new for e in self.edits if isinstance(e, Rename)}

    def kinds(self):
        """{kind: number of edits of that kind}."""
        out = {}
        for e in self.edits:
            out[e.kind] = out.get(e.kind, 0) + 1
        return out




# ---------------------------------------------------------------- m4
# Hot (fdod's profile of base on the training set):
# next_token, peek_input and next_char_1 (input.c), expand_token,
# expand_input and expand_macro (macro.c), lookup_symbol and hash
# (symtab.c), shipout_text (output.c).

M4 = Release("m4", [
    # hot-lines: the start of next_token rewritten (3 debug lines gone,
    # a comment added, the `line` default folded into one line).
    Replace("hot-lines", "src/input.c", "next_token: lines inserted and removed at its start", (
        """  obstack_free (&token_stack, token_bottom);
  if (!line)
    line = &dummy;

 /* Can't consume character until after CHAR_MACRO is handled.  */
  ch = peek_input ();
  if (ch == CHAR_EOF)
    {
#ifdef DEBUG_INPUT
      xfprintf (stderr, "next_token -> EOF\\n");
#endif
      next_char ();
      return TOKEN_EOF;
    }
""", """  /* The token stack holds one token text at a time: drop the last
     one.  Callers that do not care where a token starts pass a NULL
     LINE.  */
  obstack_free (&token_stack, token_bottom);
  line = line ? line : &dummy;

  /* Can't consume character until after CHAR_MACRO is handled.  */
  ch = peek_input ();
  if (ch == CHAR_EOF)
    {
      next_char ();
      return TOKEN_EOF;
    }
""")),
    # hot-lines: the quoted-string loop of next_token gets comments and a
    # blank line (lines inserted in its hottest loop).
    Replace("hot-lines", "src/input.c", "next_token: lines inserted in the quoted-string loop", (
        """      bool fast = lquote.length == 1 && rquote.length == 1;
      quote_level = 1;
""", """      /* With one-byte quotes the buffer scan below finds the closing
         quote itself, counting the nesting as it goes; longer quotes
         are matched one byte at a time.  */
      bool fast = lquote.length == 1 && rquote.length == 1;

      quote_level = 1;
"""), (
        """          if (MATCH (ch, rquote.string, true))
            {
              if (--quote_level == 0)
                break;
""", """          /* A byte at a time: a closing quote ends the string at the
             outermost level, any other quote is part of the text.  */
          if (MATCH (ch, rquote.string, true))
            {
              if (--quote_level == 0)
                break;
""")),
    # split: next_token's word scanning becomes its own function,
    # scan_word (the rest of next_token shifts up by 8 lines).
    Replace("split", "src/input.c", "next_token split: the word scanner is scan_word ()", (
        """  else if (default_word_regexp && (c_isalpha (ch) || ch == '_'))
    {
      obstack_1grow (&token_stack, ch);
      while ((ch = peek_input ()) != CHAR_EOF && (c_isalnum (ch) || ch == '_'))
        {
          obstack_1grow (&token_stack, ch);
          next_char ();
        }
      type = TOKEN_WORD;
    }
""", """  else if (default_word_regexp && (c_isalpha (ch) || ch == '_'))
    type = scan_word (ch);
"""), (
        """token_type
next_token (token_data *td, int *line)
{
""", """/*--------------------------------------------------------------.
| Collect a word that starts with CH (a letter or an underscore) |
| on the token stack: letters, digits and underscores.           |
`--------------------------------------------------------------*/

static token_type
scan_word (int ch)
{
  obstack_1grow (&token_stack, ch);
  while ((ch = peek_input ()) != CHAR_EOF && (c_isalnum (ch) || ch == '_'))
    {
      obstack_1grow (&token_stack, ch);
      next_char ();
    }
  return TOKEN_WORD;
}

token_type
next_token (token_data *td, int *line)
{
""")),
    # rename: lookup_symbol (every word of the input is looked up) is
    # symtab_lookup in release N+1, in its callers and comments too.
    Rename("rename", ["src/m4.h", "src/symtab.c", "src/macro.c", "src/builtin.c", "src/m4.c"],
           "lookup_symbol", "symtab_lookup", "the symbol table's lookup renamed"),
    # new-path: one-character tokens (the spaces and punctuation between
    # words) go to the output through a new function, shipout_char,
    # instead of strlen and shipout_text.
    Replace("new-path", "src/macro.c", "expand_token: a new path for one-character tokens", (
        """    case TOKEN_OPEN:
    case TOKEN_COMMA:
    case TOKEN_CLOSE:
    case TOKEN_SIMPLE:
    case TOKEN_STRING:
""", """    case TOKEN_SIMPLE:
      /* One character (a NUL byte: none): the commonest token of a
         text, shipped without measuring it.  */
      if (TOKEN_DATA_TEXT (td)[0] != '\\0')
        {
          shipout_char (obs, TOKEN_DATA_TEXT (td)[0], line);
          break;
        }
      FALLTHROUGH;
    case TOKEN_OPEN:
    case TOKEN_COMMA:
    case TOKEN_CLOSE:
    case TOKEN_STRING:
""")),
    Replace("new-path", "src/m4.h", "shipout_char declared", (
        """extern void shipout_text (struct obstack *, const char *, int, int);
""", """extern void shipout_text (struct obstack *, const char *, int, int);
extern void shipout_char (struct obstack *, char, int);
""")),
    Replace("new-path", "src/output.c", "shipout_char: one character, as shipout_text ships it", (
        """void
shipout_text (struct obstack *obs, const char *text, int length, int line)
{
""", """void
shipout_char (struct obstack *obs, char ch, int line)
{
  if (obs != NULL)
    obstack_1grow (obs, ch);
  else if (output_diversion == NULL)
    return;
  else if (!sync_output)
    {
      OUTPUT_CHARACTER (ch);
    }
  else
    shipout_text (obs, &ch, 1, line);
}

void
shipout_text (struct obstack *obs, const char *text, int length, int line)
{
""")),
    # reorder: expand_input moves below expand_token in macro.c, and
    # next_token (with its comment) below peek_token in input.c.
    Move("reorder", "src/macro.c", """/*----------------------------------------------------------------------.
| This function read all input, and expands each token, one at a time.  |""",
         """  obstack_free (&argc_stack, NULL);
  obstack_free (&argv_stack, NULL);
}
\f

""", """/*-------------------------------------------------------------------.
| This function parses one argument to a macro call.""",
         "expand_input moved below expand_token"),
    Move("reorder", "src/input.c", """/*--------------------------------------------------------------------.
| Parse and return a single token from the input stream.""",
         """#ifdef DEBUG_INPUT
  xfprintf (stderr, "next_token -> %s (%s)\\n",
            token_type_string (type), TOKEN_DATA_TEXT (td));
#endif
  return type;
}

""", """#ifdef DEBUG_INPUT

static const char *""", "next_token moved below peek_token"),
])

# ---------------------------------------------------------------- bzip2
# Hot on the training set and the timing command (compression): mainGtU,
# mainSimpleSort, mainQSort3 and mainSort (blocksort.c), generateMTFValues
# and sendMTFValues (compress.c), add_pair_to_block and
# copy_input_until_stop (bzlib.c); BZ2_decompress when decompressing.

_GTU_STEP = ("   c1 = block[i1]; c2 = block[i2];\n"
             "   if (c1 != c2) return (c1 > c2);\n"
             "   i1++; i2++;\n")


def _indent(text, n):
    return "".join(" " * n + ln if ln.strip() else ln for ln in text.splitlines(True))


# generateMTFValues' zero-run coder (both copies; its lines end in blanks)
_ZERO_RUN_LOOP = """zPend--;
while (True) {
   if (zPend & 1) {
      mtfv[wr] = BZ_RUNB; wr++; 
      s->mtfFreq[BZ_RUNB]++; 
   } else {
      mtfv[wr] = BZ_RUNA; wr++; 
      s->mtfFreq[BZ_RUNA]++; 
   }
   if (zPend < 2) break;
   zPend = (zPend - 2) / 2;
};
"""
_ZERO_RUN = "if (zPend > 0) {\n" + _indent(_ZERO_RUN_LOOP, 3) + "   zPend = 0;\n}\n"


BZIP2 = Release("bzip2", [
    # hot-lines: mainGtU's unrolled head loses its 12 step comments and
    # gets a comment before the loop (12 lines removed, 2 inserted).
    Replace("hot-lines", "blocksort.c", "mainGtU: its step comments removed, a comment added", (
        "".join("   /* %d */\n" % (i + 1) + _GTU_STEP for i in range(12))
        + "\n   k = nblock + 8;\n",
        _GTU_STEP * 12 + "\n   /* The first 12 bytes decide most comparisons of a text;"
        "\n      from here on the quadrant values break ties as well.  */\n"
        "   k = nblock + 8;\n")),
    # hot-lines: generateMTFValues' loop head gets a comment and one
    # statement per line.
    Replace("hot-lines", "compress.c", "generateMTFValues: lines inserted in its loop", (
        """      j = ptr[i]-1; if (j < 0) j += s->nblock;
""", """      /* The byte before the i-th sorted rotation, as a symbol. */
      j = ptr[i]-1;
      if (j < 0) j += s->nblock;
""")),
    # split: generateMTFValues' two copies of the zero-run coder become
    # one new function, putZeroRun.
    Replace("split", "compress.c", "generateMTFValues split: its zero runs in putZeroRun ()", (
        _indent(_ZERO_RUN, 9),
        "         if (zPend > 0) {\n"
        "            wr = putZeroRun ( s, mtfv, wr, zPend );\n"
        "            zPend = 0;\n"
        "         }\n"), (
        _indent(_ZERO_RUN, 3),
        "   if (zPend > 0) {\n"
        "      wr = putZeroRun ( s, mtfv, wr, zPend );\n"
        "      zPend = 0;\n"
        "   }\n"), (
        "static\nvoid generateMTFValues ( EState* s )\n",
        """/*---------------------------------------------------*/
/* A run of zPend > 0 zeroes in the MTF output, coded in
   bijective base 2 with the digits RUNA and RUNB.  Returns the
   new write position.  */
static
Int32 putZeroRun ( EState* s, UInt16* mtfv, Int32 wr, Int32 zPend )
{
""" + _indent(_ZERO_RUN_LOOP.replace(" \n", "\n"), 3) + """   return wr;
}


/*---------------------------------------------------*/
static
void generateMTFValues ( EState* s )
""")),
    # rename: mainSimpleSort (the shell sort that calls mainGtU) is
    # mainShellSort in release N+1.
    Rename("rename", ["blocksort.c"], "mainSimpleSort", "mainShellSort",
           "the main sort's shell sort renamed"),
    # new-path: add_pair_to_block gets a fast path for a run of one byte
    # (most of a text): one CRC update, no loop, no switch.
    Replace("new-path", "bzlib.c", "add_pair_to_block: a fast path for runs of one byte", (
        """   UChar ch = (UChar)(s->state_in_ch);
   for (i = 0; i < s->state_in_len; i++) {
""", """   UChar ch = (UChar)(s->state_in_ch);
   if (s->state_in_len == 1) {
      BZ_UPDATE_CRC( s->blockCRC, ch );
      s->inUse[s->state_in_ch] = True;
      s->block[s->nblock] = (UChar)ch; s->nblock++;
      return;
   }
   for (i = 0; i < s->state_in_len; i++) {
""")),
    # reorder: the fallback sort (fallbackSimpleSort, fallbackQSort3,
    # fallbackSort and their macros) moves below the main sort.
    Move("reorder", "blocksort.c", """/*---------------------------------------------*/
/*--- Fallback O(N log(N)^2) sorting        ---*/""", """#undef UNALIGNED_BH


""", """#undef CLEARMASK


""", "the fallback sort moved below the main sort", after=True),
])

# ---------------------------------------------------------------- grep
# Hot (LC_ALL=C): dfaexec_sb, i.e. dfaexec_main inlined (lib/dfa.c),
# EGexecute (src/dfasearch.c), kwsexec and its Boyer-Moore and
# Aho-Corasick searches (lib/kwset.c), grepbuf and fillbuf (src/grep.c).

_DFA_RESET = """  if (MAX_TRCOUNT <= d->sindex)
    {
      for (state_num s = d->min_trcount; s < d->sindex; s++)
        {
          free (d->states[s].elems.elems);
          free (d->states[s].mbps.elems);
        }
      d->sindex = d->min_trcount;

      if (d->trans)
        {
          for (state_num s = 0; s < d->tralloc; s++)
            {
              free (d->trans[s]);
              free (d->fails[s]);
              d->trans[s] = d->fails[s] = NULL;
            }
          d->trcount = 0;
        }

      if (d->localeinfo.multibyte && d->mb_trans)
        {
          for (state_num s = -1; s < d->tralloc; s++)
            {
              free (d->mb_trans[s]);
              d->mb_trans[s] = NULL;
            }
          for (state_num s = 0; s < d->min_trcount; s++)
            d->states[s].mb_trindex = -1;
          d->mb_trcount = 0;
        }
    }
"""

GREP = Release("grep", [
    # split: dfaexec_main's state-cache reset (its first 33 lines) becomes
    # dfa_flush_states; the hot loop below moves up by 31 lines.
    Replace("split", "lib/dfa.c", "dfaexec_main split: its cache reset in dfa_flush_states ()", (
        """static inline char *
dfaexec_main (struct dfa *d, char const *begin, char *end, bool allow_nl,
              idx_t *count, bool multibyte)
{
""" + _DFA_RESET, """/* Forget the states built since the last flush and their transition
   tables once there are too many of them.  */

static void
dfa_flush_states (struct dfa *d)
{
""" + _DFA_RESET.replace("\n    ", "\n").replace("  if (MAX_TRCOUNT <= d->sindex)\n{\n",
                                                  "").rsplit("}\n", 1)[0] + """}

static inline char *
dfaexec_main (struct dfa *d, char const *begin, char *end, bool allow_nl,
              idx_t *count, bool multibyte)
{
  if (MAX_TRCOUNT <= d->sindex)
    dfa_flush_states (d);
""")),
    # hot-lines: the single-byte transition step of dfaexec_main gets a
    # comment (2 lines) and its swap on one line (3 lines removed).
    Replace("hot-lines", "lib/dfa.c", "dfaexec_main: lines inserted and removed in its loop", (
        """          else
            {
              s1 = t[*p++];
              t = trans[s1];
              if (! t)
                {
                  state_num tmp = s;
                  s = s1;
                  s1 = tmp;     /* swap */
                  break;
                }
""", """          else
            {
              /* Two transitions per iteration; the second one only when
                 S1 already has its transition table.  */
              s1 = t[*p++];
              t = trans[s1];
              if (! t)
                {
                  state_num tmp = s; s = s1; s1 = tmp;
                  break;
                }
""")),
    # new-path: the skip over bytes that keep the initial state goes four
    # bytes at a time first (the end sentinel never keeps a state, so no
    # read goes past it).
    Replace("new-path", "lib/dfa.c", "dfaexec_main: a 4-byte skip loop before the 1-byte one", (
        """              if (!multibyte || d->states[s].mbps.nelem == 0)
                {
                  while (t[*p] == s)
                    p++;
                }
""", """              if (!multibyte || d->states[s].mbps.nelem == 0)
                {
                  while (t[p[0]] == s && t[p[1]] == s && t[p[2]] == s
                         && t[p[3]] == s)
                    p += 4;
                  while (t[*p] == s)
                    p++;
                }
""")),
    # rename: dfaexec_sb, the single-byte matcher, is dfaexec_unibyte.
    Rename("rename", ["lib/dfa.c"], "dfaexec_sb", "dfaexec_unibyte",
           "the single-byte DFA matcher renamed"),
    # reorder: the specialized matchers (dfaexec_mb, dfaexec_unibyte,
    # dfaexec_noop) move below dfaexec.
    Move("reorder", "lib/dfa.c", """/* Specialized versions of dfaexec for multibyte and single-byte cases.""",
         """  *backref = true;
  return (char *) begin;
}

""", """  return d->dfaexec (d, begin, end, allow_nl, count, backref);
}

""", "the specialized matchers moved below dfaexec", after=True),
])

# ---------------------------------------------------------------- gawk
# Hot: r_interpret (interpret.h, included twice by eval.c: r_interpret and
# h_interpret), eval_condition and cmp_scalars (eval.c), str_lookup,
# str_find and gst_hash_string (str_array.c), the field splitters
# (field.c), research (re.c).

GAWK = Release("gawk", [
    # hot-lines: r_interpret's conditional jumps get comments (4 lines
    # inserted), a comment in its variable push goes (1 line removed).
    Replace("hot-lines", "interpret.h", "r_interpret: lines inserted and removed", (
        """					if (m->orig_array->type == Node_var) {
						/* gawk 'func f(x) { a = 10; print x; } BEGIN{ f(a) }' */
						goto uninitialized_scalar;
""", """					if (m->orig_array->type == Node_var) {
						goto uninitialized_scalar;
"""), (
        """		case Op_jmp_true:
			r = POP_SCALAR();
""", """		case Op_jmp_true:
			/* The condition of a loop's end or of an `||': jump back
			   or past when it holds.  */
			r = POP_SCALAR();
""")),
    # new-path: Op_jmp_false tests a comparison's result (one of the two
    # Boolean nodes) without converting it.
    Replace("new-path", "interpret.h", "r_interpret: Op_jmp_false's path for Boolean nodes", (
        """		case Op_jmp_false:
			r = POP_SCALAR();
			di = eval_condition(r);
""", """		case Op_jmp_false:
			/* The condition of an if, a while or a for: most often the
			   result of a comparison, a Boolean node.  */
			r = POP_SCALAR();
			if (r == node_Boolean[false] || r == node_Boolean[true]) {
				di = (r == node_Boolean[true]);
				DEREF(r);
				if (! di)
					JUMPTO(pc->target_jmp);
				break;
			}
			di = eval_condition(r);
""")),
    # rename: eval_condition is cond_value in release N+1.
    Rename("rename", ["eval.c", "interpret.h"], "eval_condition", "cond_value",
           "the truth value of a condition renamed"),
    # split: str_lookup's installation of a new element becomes
    # str_install.
    Replace("split", "str_array.c", "str_lookup split: a new element installed by str_install ()", (
        """	if ((lhs = str_find(symbol, subs, code1, hash1)) != NULL)
		return lhs;

	/* It's not there, install it. */
	/* first see if we would need to grow the array, before installing */
""", """	if ((lhs = str_find(symbol, subs, code1, hash1)) != NULL)
		return lhs;
	return str_install(symbol, subs, code1, hash1);
}

/* str_install --- install SUBS (not there) in SYMBOL with value "" */

static NODE **
str_install(NODE *symbol, NODE *subs, size_t code1, unsigned long hash1)
{
	BUCKET *b;

	/* first see if we would need to grow the array, before installing */
"""), (
        """static inline NODE **str_find(NODE *symbol, NODE *s1, size_t code1, unsigned long hash1);
""", """static inline NODE **str_find(NODE *symbol, NODE *s1, size_t code1, unsigned long hash1);
static NODE **str_install(NODE *symbol, NODE *subs, size_t code1, unsigned long hash1);
"""), (
        """	unsigned long hash1;
	NODE **lhs;
	BUCKET *b;
	size_t code1;

	subs = force_string(subs);

	if (symbol->buckets == NULL)
""", """	unsigned long hash1;
	NODE **lhs;
	size_t code1;

	subs = force_string(subs);

	if (symbol->buckets == NULL)
""")),
    # reorder: str_find moves up, above str_lookup.
    Move("reorder", "str_array.c", """/* str_find --- locate symbol[subs] */
""", """			return & (b->ahvalue);
	}
	return NULL;
}


""", """/*
 * str_lookup:
""", "str_find moved above str_lookup"),
])

# ---------------------------------------------------------------- perl
# Hot (miniperl): Perl_runops_standard and the ops it calls (pp_hot.c:
# pp_nextstate, pp_padsv, pp_const, pp_add, Perl_pp_entersub, the method
# lookups), S_regmatch (regexec.c), Perl_hv_common (hv.c),
# Perl_sv_setsv_flags (sv.c). Static functions are named in embed.h and
# proto.h too (generated files; a rename edits them as regen would).

PERL = Release("perl", [
    # hot-lines: pp_padsv loses a 4-line comment; pp_nextstate's taint
    # comment gets a line of its own.
    Replace("hot-lines", "pp_hot.c", "pp_padsv and pp_nextstate: lines inserted and removed", (
        """            if (op->op_private & OPpDEREF) {
                /* TOPs is equivalent to TARG here.  Using TOPs (SP) rather
                   than TARG reduces the scope of TARG, so it does not
                   span the call to save_clearsv, resulting in smaller
                   machine code. */
                TOPs = vivify_ref(TOPs, op->op_private & OPpDEREF);
""", """            if (op->op_private & OPpDEREF) {
                TOPs = vivify_ref(TOPs, op->op_private & OPpDEREF);
"""), (
        """    PL_curcop = (COP*)PL_op;
    TAINT_NOT;		/* Each statement is presumed innocent */
""", """    PL_curcop = (COP*)PL_op;
    /* Each statement is presumed innocent */
    TAINT_NOT;
""")),
    # split: pp_padsv's lvalue part (local, state, autovivification)
    # becomes S_padsv_mod.
    Replace("split", "pp_hot.c", "pp_padsv split: its lvalue part in S_padsv_mod ()", (
        """        if (op->op_flags & OPf_MOD) {
            if (op->op_private & OPpLVAL_INTRO)
                if (!(op->op_private & OPpPAD_STATE))
                    save_clearsv(padentry);
            if (op->op_private & OPpDEREF) {
                TOPs = vivify_ref(TOPs, op->op_private & OPpDEREF);
            }
        }
        return op->op_next;
""", """        if (op->op_flags & OPf_MOD)
            S_padsv_mod(aTHX_ op, padentry);
        return op->op_next;
"""), (
        """PP(pp_padsv)
{
""", """/* pp_padsv of an lvalue: clear the lexical at scope exit (my), or
   autovivify a reference in it; the lexical is on the top of the stack. */

static void
S_padsv_mod(pTHX_ OP * const op, SV ** const padentry)
{
    dSP;
    if (op->op_private & OPpLVAL_INTRO)
        if (!(op->op_private & OPpPAD_STATE))
            save_clearsv(padentry);
    if (op->op_private & OPpDEREF)
        TOPs = vivify_ref(TOPs, op->op_private & OPpDEREF);
}

PP(pp_padsv)
{
""")),
    # new-path: a plain read of a lexical (no lvalue) is pushed at once.
    Replace("new-path", "pp_hot.c", "pp_padsv: a path for plain reads", (
        """PP(pp_padsv)
{
    dSP;
    EXTEND(SP, 1);
    {
""", """PP(pp_padsv)
{
    dSP;
    EXTEND(SP, 1);
    if (!(PL_op->op_flags & OPf_MOD)) {
        /* a plain read: push the lexical, nothing to save */
        PUSHs(PAD_SVl(PL_op->op_targ));
        PUTBACK;
        return PL_op->op_next;
    }
    {
""")),
    # rename: the invocant's stash of a method call, S_opmethod_stash, is
    # S_method_stash_of (its embed.h macro too).
    Rename("rename", ["pp_hot.c", "embed.h", "proto.h"], "S_opmethod_stash",
           "S_method_stash_of", "the method call's stash lookup renamed"),
    Rename("rename", ["pp_hot.c", "embed.h"], "opmethod_stash", "method_stash_of",
           "the method call's stash lookup renamed (its embed.h macro)"),
    # reorder: pp_padsv (and its new helper) move below pp_readline.
    Move("reorder", "pp_hot.c", """/* pp_padsv of an lvalue:""", """        return op->op_next;
    }
}

""", """PP(pp_eq)
""", "pp_padsv moved below pp_readline"),
])

RELEASES = {r.program: r for r in (BZIP2, GAWK, GREP, M4, PERL)}
