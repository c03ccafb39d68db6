"""bench/fdo/programs.py — the programs of the FDO benchmark (bench/fdo).

Each program is a Debian bookworm source package built with clang-16 from
its own source tree, plus the inputs it runs on: a TRAINING set (several
different commands, what a fleet's hosts would run; sampled under
fdo-agent for the sample-PGO variants and run instrumented for the
instrumented-PGO ceiling) and one TIMING command on a different input.
Every input is generated here, deterministically (a fixed seed; the same
bytes on every machine and every run), from synthetic text, logs, JSON
lines and the package's own source files.

A program is a Program object:
  name       the binary's name (also its name in fdod)
  package    the Debian source package (`apt-get source PACKAGE`)
  binary     the built program's path inside the source tree
  configure  argv lists run once in a copy of the source tree, with the
             base flags (CC, CFLAGS, LDFLAGS); the configured tree is then
             copied for every variant, so configure never sees a profile
  make       argv lists that build the binary with a variant's flags
  inputs     writes the input files into a directory (run once; cached)
  training   [(label, args, stdin file or None)]: the training set
  timing     (args, stdin file or None): the timed command (~0.3-1 s CPU)
  hot        functions that must be in a profile of the training set
Commands run with the inputs directory as their working directory and
write only to stdout, which is compared between variants.

To add a program: a new Program in PROGRAMS (screen it first: its
instrumented-PGO gain on the timing command should be at least ~5%; see
README.md).
"""
import bz2
import lzma
import os
import random

# Version of the definitions below: part of every build's cache key and of
# the inputs' stamp, so a change here rebuilds and regenerates.
DEFS_VERSION = 1


class Program:
    def __init__(self, name, package, binary, configure, make, inputs,
                 training, timing, hot, short_training=None, note=""):
        self.name = name
        self.package = package
        self.binary = binary
        self.configure = configure
        self.make = make
        self.inputs = inputs
        self.training = training
        self.timing = timing
        self.hot = hot
        self.short_training = short_training or training[:2]
        self.note = note


def flag_str(flags):
    return " ".join(flags)


# ---------------------------------------------------------------- inputs

SYLLABLES = ("ka ri to me na lo se vu an el is or um ex pra sti qua dor ven "
             "lin gor tha bel cri mon ske wal fu zy pe ro ta ni").split()


def vocabulary(rng, n):
    words = set()
    while len(words) < n:
        words.add("".join(rng.choice(SYLLABLES)
                          for _ in range(rng.randint(1, 4))))
    return sorted(words)


def zipf_weights(n):
    return [1.0 / (i + 1) for i in range(n)]


def text(seed, nbytes, vocab_size=5000):
    """Pseudo-English: Zipf-distributed words, sentences, some numbers."""
    rng = random.Random(seed)
    vocab = vocabulary(rng, vocab_size)
    cum, s = [], 0.0
    for w in zipf_weights(len(vocab)):
        s += w
        cum.append(s)
    out, size = [], 0
    while size < nbytes:
        words = rng.choices(vocab, cum_weights=cum, k=rng.randint(6, 18))
        if rng.random() < 0.2:
            words.insert(rng.randrange(len(words)), str(rng.randint(0, 99999)))
        line = " ".join(words).capitalize() + rng.choice(".,.;!?") + "\n"
        out.append(line)
        size += len(line)
    return "".join(out)


def log_lines(seed, nbytes):
    """Web-server-like log lines: time host method path status bytes secs."""
    rng = random.Random(seed)
    vocab = vocabulary(rng, 300)
    hosts = ["host%02d" % i for i in range(40)]
    methods = ["GET"] * 8 + ["POST"] * 3 + ["PUT", "DELETE"]
    statuses = [200] * 30 + [301, 302, 304, 400, 403, 404, 404, 500, 503]
    out, size, t = [], 0, 1700000000
    while size < nbytes:
        t += rng.randint(0, 3)
        path = "/" + "/".join(rng.choice(vocab)
                              for _ in range(rng.randint(1, 4)))
        if rng.random() < 0.3:
            path += "?id=%d" % rng.randint(1, 5000)
        line = "%d %s %s %s %d %d %.3f\n" % (
            t, rng.choice(hosts), rng.choice(methods), path,
            rng.choice(statuses), rng.randint(0, 200000),
            rng.expovariate(8.0))
        out.append(line)
        size += len(line)
    return "".join(out)


def csv_rows(seed, nbytes):
    rng = random.Random(seed)
    vocab = vocabulary(rng, 800)
    out, size, i = ["id,name,city,qty,price,score\n"], 0, 0
    while size < nbytes:
        i += 1
        line = "%d,%s,%s,%d,%.2f,%d\n" % (
            i, rng.choice(vocab).capitalize(), rng.choice(vocab[:50]),
            rng.randint(1, 500), rng.uniform(0.5, 999.0),
            rng.randint(-1000, 1000))
        out.append(line)
        size += len(line)
    return "".join(out)


def json_lines(seed, nbytes):
    rng = random.Random(seed)
    vocab = vocabulary(rng, 600)
    out, size, i = [], 0, 0
    while size < nbytes:
        i += 1
        tags = ",".join('"%s"' % rng.choice(vocab)
                        for _ in range(rng.randint(0, 4)))
        line = ('{"id":%d,"user":"%s","ok":%s,"n":%d,"ratio":%.4f,'
                '"tags":[%s],"geo":{"lat":%.3f,"lon":%.3f}}\n' % (
                    i, rng.choice(vocab), rng.choice(["true", "false"]),
                    rng.randint(0, 10 ** 6), rng.random(), tags,
                    rng.uniform(-90, 90), rng.uniform(-180, 180)))
        out.append(line)
        size += len(line)
    return "".join(out)


def noisy_bytes(seed, nbytes):
    """Low-entropy binary: runs, small deltas, some random spans."""
    rng = random.Random(seed)
    out = bytearray()
    v = 0
    while len(out) < nbytes:
        kind = rng.random()
        n = rng.randint(16, 600)
        if kind < 0.3:
            out += bytes([rng.randrange(256)]) * n
        elif kind < 0.8:
            for _ in range(n):
                v = (v + rng.randint(-3, 3)) & 0xFF
                out.append(v)
        else:
            out += rng.randbytes(n // 4)
    return bytes(out[:nbytes])


def source_text(tree, nbytes, exts=(".c", ".h")):
    """The package's own source files, concatenated in sorted path order
    (deterministic for a given package version), cut to nbytes."""
    parts, size = [], 0
    for root, dirs, files in sorted(os.walk(tree)):
        dirs.sort()
        for f in sorted(files):
            if f.endswith(exts):
                with open(os.path.join(root, f), "rb") as fh:
                    data = fh.read()
                parts.append(data)
                size += len(data)
                if size >= nbytes:
                    return b"".join(parts)[:nbytes]
    return b"".join(parts)[:nbytes]


def write(d, name, data):
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def mix(*parts):
    return "".join(parts)


# ---------------------------------------------------------------- bzip2


def bzip2_inputs(d, tree, scale):
    mb = 1 << 20
    write(d, "text.txt", text(11, int(5 * mb * scale)))
    write(d, "code.c", source_text(tree, int(1.5 * mb * scale)))
    write(d, "access.log", log_lines(12, int(5 * mb * scale)))
    write(d, "noisy.bin", noisy_bytes(13, int(4 * mb * scale)))
    write(d, "events.json.bz2", bz2.compress(
        json_lines(14, int(8 * mb * scale)).encode(), 9))
    write(d, "text.txt.bz2", bz2.compress(text(15, int(6 * mb * scale)).encode(), 9))
    # timing: a different mix (CSV and JSON-ish records, other seeds)
    write(d, "timing.dat", mix(csv_rows(21, int(2 * mb)), json_lines(22, int(2.5 * mb)),
                               text(23, int(1.5 * mb))))


BZIP2 = Program(
    name="bzip2", package="bzip2", binary="bzip2",
    configure=lambda c: [],
    # Debian's Makefile links bzip2 to libbz2.so, which would run the
    # system's library: link the static one.
    make=lambda c: [["make", "-j2", "libbz2.a", "bzip2.o", "CC=" + c.cc,
                     "CFLAGS=-Wall -Winline -D_FILE_OFFSET_BITS=64 " + flag_str(c.cflags)],
                    [c.cc] + c.cflags + c.ldflags + ["-o", "bzip2", "bzip2.o", "libbz2.a"]],
    inputs=bzip2_inputs,
    training=[
        ("text-9", ["-c", "-9", "text.txt"], None, 12),
        ("code-9", ["-c", "-9"] + ["code.c"] * 8, None, 6),
        ("log-6", ["-c", "-6", "access.log"], None, 12),
        ("noisy-1", ["-c", "-1", "noisy.bin"], None, 12),
        ("stdin-json-d", ["-dc"], "events.json.bz2", 12),
        ("text-d", ["-dc", "text.txt.bz2"], None, 12),
    ],
    timing=(["-c", "-9", "timing.dat"], None),
    hot=["BZ2_compressBlock", "mainGtU"],
    short_training=[("text-9", ["-c", "-9", "text.txt"], None, 4),
                    ("text-d", ["-dc", "text.txt.bz2"], None, 4)],
)

# ---------------------------------------------------------------- xz


def xz_inputs(d, tree, scale):
    mb = 1 << 20
    write(d, "text.txt", text(31, int(1.2 * mb * scale)))
    write(d, "code.c", source_text(tree, int(1.0 * mb * scale)))
    write(d, "access.log", log_lines(32, int(1.5 * mb * scale)))
    write(d, "noisy.bin", noisy_bytes(33, int(1.5 * mb * scale)))
    write(d, "events.json.xz", lzma.compress(
        json_lines(34, int(12 * mb * scale)).encode(), preset=6))
    write(d, "text.txt.xz", lzma.compress(text(35, int(12 * mb * scale)).encode(), preset=6))
    write(d, "timing.dat", mix(csv_rows(41, int(0.4 * mb)), json_lines(42, int(0.4 * mb)),
                               text(43, int(0.3 * mb))))


XZ = Program(
    name="xz", package="xz-utils", binary="src/xz/xz",
    configure=lambda c: [["./configure", "-q", "CC=" + c.cc, "CFLAGS=" + flag_str(c.cflags),
                          "LDFLAGS=" + flag_str(c.ldflags), "--disable-shared",
                          "--disable-nls", "--disable-threads", "--disable-xzdec",
                          "--disable-lzmadec", "--disable-lzmainfo", "--disable-scripts",
                          "--disable-doc"]],
    make=lambda c: [["make", "-j2", "-C", "src/liblzma", "CFLAGS=" + flag_str(c.cflags),
                     "LDFLAGS=" + flag_str(c.ldflags)],
                    ["make", "-j2", "-C", "src/xz", "xz", "CFLAGS=" + flag_str(c.cflags),
                     "LDFLAGS=" + flag_str(c.ldflags)]],
    inputs=xz_inputs,
    training=[
        ("text-6", ["-c", "-6", "text.txt"], None),
        ("code-9", ["-c", "-9", "code.c"], None),
        ("log-3", ["-c", "-3", "access.log"], None),
        ("noisy-1", ["-c", "-1", "noisy.bin"], None),
        ("stdin-json-d", ["-dc"], "events.json.xz"),
        ("text-d", ["-dc", "text.txt.xz"], None),
    ],
    timing=(["-c", "-6", "timing.dat"], None),
    hot=["lzma_mf_bt4_find", "lzma_lzma_optimum_normal"],
)

# ---------------------------------------------------------------- gawk

GAWK_TRAIN = {
    "wordfreq.awk": r"""
{ for (i = 1; i <= NF; i++) { w = tolower($i); gsub(/[^a-z0-9]/, "", w); if (w != "") n[w]++ } }
END { for (w in n) if (n[w] > 50) c++; print c; m = 0
      for (w in n) if (n[w] > m) { m = n[w]; b = w }; print b, m }
""",
    "logstats.awk": r"""
{ st[$5]++; by[$2] += $6; t[$3] += $7
  if ($4 ~ /\?id=[0-9]+$/) { split($4, q, "="); ids[q[2] % 97]++ } }
END { for (s in st) printf "%s %d\n", s, st[s] | "sort"; close("sort")
      for (h in by) tot += by[h]; printf "%d %.3f\n", tot, t["GET"]
      for (k in ids) x += ids[k] * k; print x }
""",
    "csv.awk": r"""
BEGIN { FS = "," }
NR > 1 { q[$3] += $4; p[$3] += $4 * $5; if ($6 > mx) { mx = $6; who = $2 }
         s = sprintf("%-10s|%8.2f", substr($2, 1, 10), $5); len += length(s) }
END { for (c in q) { n++; tot += p[c] / q[c] }; printf "%d %.4f %s %d %d\n", n, tot, who, mx, len }
""",
    "strings.awk": r"""
{ line = $0; u = toupper(line); k = index(u, "KA"); if (k) hits++
  r = ""; for (i = length(line); i > 0 && i > length(line) - 20; i--) r = r substr(line, i, 1)
  if (match(line, /[a-z]+or[a-z]*/)) { m[substr(line, RSTART, RLENGTH)]++ }
  cnt += gsub(/e/, "E", line); total += length(r) }
END { for (w in m) d++; print hits, cnt, total, d }
""",
    "numeric.awk": r"""
function fib(n) { return n < 2 ? n : fib(n - 1) + fib(n - 2) }
BEGIN { for (i = 2; i < 300000; i++) if (!(i in comp)) { np++; for (j = i * i; j < 300000; j += i) comp[j] = 1 }
        print np, fib(22); s = 0; for (i = 1; i <= 400000; i++) s += sin(i) * (i % 7); printf "%.6f\n", s }
""",
}

GAWK_TIMING = r"""
BEGIN { FS = "[{},:\"]+" }
/"id"/ { for (i = 2; i < NF; i += 2) { k = $i; v = $(i + 1); f[k]++
           if (v ~ /^-?[0-9.]+$/) sum[k] += v; else words[v]++ } }
/^[0-9]+,/ { split($0, c, ","); city[c[3]] += c[4]; price += c[5] }
END { for (k in f) nf++; for (w in words) nw++
      n = asorti(city, keys); for (i = 1; i <= n; i++) out = out keys[i] ":" city[keys[i]] " "
      printf "%d %d %.2f %.3f %d\n", nf, nw, price, sum["ratio"], length(out) }
"""


def gawk_inputs(d, tree, scale):
    mb = 1 << 20
    for name, src in GAWK_TRAIN.items():
        write(d, name, src.lstrip())
    write(d, "timing.awk", GAWK_TIMING.lstrip())
    write(d, "text.txt", text(51, int(5 * mb * scale)))
    write(d, "access.log", log_lines(52, int(8 * mb * scale)))
    write(d, "data.csv", csv_rows(53, int(8 * mb * scale)))
    write(d, "timing.dat", mix(json_lines(61, int(8 * mb)), csv_rows(62, int(4 * mb))))


def autoconf(extra=()):
    return lambda c: [["./configure", "-q", "CC=" + c.cc, "CFLAGS=" + flag_str(c.cflags),
                       "LDFLAGS=" + flag_str(c.ldflags)] + list(extra)]


GAWK = Program(
    name="gawk", package="gawk", binary="gawk",
    configure=autoconf(["--disable-nls", "--disable-mpfr", "--without-readline",
                        "--disable-extensions"]),
    make=lambda c: [["make", "-j2", "-C", "support", "CFLAGS=" + flag_str(c.cflags)],
                    ["make", "-j2", "gawk", "CFLAGS=" + flag_str(c.cflags),
                     "LDFLAGS=" + flag_str(c.ldflags)]],
    inputs=gawk_inputs,
    training=[
        ("wordfreq", ["-f", "wordfreq.awk", "text.txt"], None, 15),
        ("logstats", ["-f", "logstats.awk", "access.log"], None, 15),
        ("csv", ["-f", "csv.awk", "data.csv"], None, 15),
        ("strings", ["-f", "strings.awk", "text.txt"], None, 15),
        ("numeric", ["-f", "numeric.awk"], None, 15),
    ],
    timing=(["-f", "timing.awk", "timing.dat"], None),
    hot=["r_interpret"],
)

# ---------------------------------------------------------------- perl

PERL_TRAIN = {
    "wordfreq.pl": r"""
my %n; while (my $l = <>) { for my $w (split /\W+/, lc $l) { $n{$w}++ if length $w } }
my @top = (sort { $n{$b} <=> $n{$a} || $a cmp $b } keys %n)[0 .. 19];
print join(" ", map { "$_=$n{$_}" } @top), "\n"; print scalar(keys %n), "\n";
""",
    "logs.pl": r"""
my (%st, %by, %path, $slow);
while (<>) {
  my ($t, $h, $m, $p, $s, $b, $d) = split / /;
  $st{$s}++; $by{$h} += $b; $slow++ if $d > 0.3;
  if ($p =~ m{^/(\w+)(?:/(\w+))?.*?(?:\?id=(\d+))?$}) { $path{$1}{$2 // ''}++; $by{id} += $3 // 0 }
  s/(\d+)\.(\d+)$/$2.$1/;
}
printf "%s\n", join ",", map { "$_:$st{$_}" } sort keys %st;
printf "%d %d %d\n", $slow, scalar(keys %path), $by{id};
""",
    "objects.pl": r"""
package Shape; sub new { my ($c, %a) = @_; bless {%a}, $c } sub area { 0 }
sub describe { my $s = shift; sprintf "%s %.2f", ref $s, $s->area }
package Circle; our @ISA = ('Shape'); sub area { 3.14159265 * $_[0]{r} ** 2 }
package Rect; our @ISA = ('Shape'); sub area { $_[0]{w} * $_[0]{h} }
package main;
my ($tot, %kinds, @all) = (0);
for my $i (1 .. 300000) {
  my $s = $i % 3 ? Circle->new(r => $i % 17) : Rect->new(w => $i % 13, h => $i % 7);
  $tot += $s->area; $kinds{ref $s}++; push @all, $s if $i % 1000 == 0;
}
my @d = map { $_->describe } sort { $a->area <=> $b->area } @all;
printf "%.1f %d %d %s\n", $tot, $kinds{Circle}, $kinds{Rect}, $d[-1];
""",
    "closures.pl": r"""
sub make_counter { my $n = shift; return sub { $n += shift // 1 } }
sub fib { my $n = shift; $n < 2 ? $n : fib($n - 1) + fib($n - 2) }
my @c = map { make_counter($_) } 1 .. 50; my $s = 0;
for my $i (1 .. 200000) { $s += $c[$i % 50]->($i % 5) }
my %memo; my $f; $f = sub { my $n = shift; $memo{$n} //= $n < 2 ? $n : $f->($n - 1) + $f->($n - 2) };
my @sieve = (1) x 200000; my $np = 0;
for my $i (2 .. $#sieve) { next unless $sieve[$i]; $np++; for (my $j = $i * $i; $j <= $#sieve; $j += $i) { $sieve[$j] = 0 } }
print join(" ", $s, fib(22), $f->(80), $np), "\n";
""",
    "csv.pl": r"""
my (%q, %p, @rows); <>;
while (my $l = <>) { chomp $l; my @f = split /,/, $l; $q{$f[2]} += $f[3]; $p{$f[2]} += $f[3] * $f[4];
  push @rows, [$f[1], $f[5]] if $f[5] > 900; my $s = sprintf "%-12s|%9.2f|%5d", @f[1, 4, 3]; $q{len} += length $s }
my @best = sort { $b->[1] <=> $a->[1] || $a->[0] cmp $b->[0] } @rows;
printf "%d %.3f %s %d\n", scalar(keys %q), $p{ (sort keys %p)[0] } / 1000, $best[0][0], $q{len};
""",
}

PERL_TIMING = r"""
my (%f, %w, %city, $n, $json, $price);
while (my $l = <>) {
  if ($l =~ /^\{/) { $json++;
    while ($l =~ /"(\w+)":("[^"]*"|[-\d.]+|true|false|\[[^\]]*\])/g) { my ($k, $v) = ($1, $2); $f{$k}++;
      if ($v =~ /^"(.*)"$/) { $w{$1}++ } elsif ($v =~ /^\[(.*)\]$/) { $w{$_}++ for map { s/"//gr } split /,/, $1 } else { $n += $v if $v =~ /\d/ } } }
  elsif ($l =~ /^(\d+),(\w+),(\w+),(\d+),([\d.]+),(-?\d+)$/) { $city{$3} += $4; $price += $5 }
}
my $out = join " ", map { "$_:$city{$_}" } sort keys %city;
printf "%d %d %d %.2f %.1f %d\n", $json, scalar(keys %f), scalar(keys %w), $price, $n, length $out;
"""


def perl_inputs(d, tree, scale):
    mb = 1 << 20
    for name, src in PERL_TRAIN.items():
        write(d, name, src.lstrip())
    write(d, "timing.pl", PERL_TIMING.lstrip())
    write(d, "text.txt", text(71, int(6 * mb * scale)))
    write(d, "access.log", log_lines(72, int(6 * mb * scale)))
    write(d, "data.csv", csv_rows(73, int(6 * mb * scale)))
    write(d, "timing.dat", mix(json_lines(81, int(5 * mb)), csv_rows(82, int(2.5 * mb))))


PERL = Program(
    name="perl", package="perl", binary="miniperl",
    configure=lambda c: [["sh", "Configure", "-des", "-Dcc=" + c.cc,
                          "-Doptimize=" + flag_str(c.cflags),
                          "-Dldflags=" + flag_str(c.ldflags),
                          "-Uusethreads", "-Dprefix=/opt/bench-fdo-perl"]],
    make=lambda c: [["make", "-j2", "miniperl", "OPTIMIZE=" + flag_str(c.cflags),
                     "CLDFLAGS=" + flag_str(c.ldflags + ["-fstack-protector-strong"])]],
    inputs=perl_inputs,
    training=[
        ("wordfreq", ["wordfreq.pl", "text.txt"], None, 12),
        ("logs", ["logs.pl", "access.log"], None, 12),
        ("objects", ["objects.pl"], None, 15),
        ("closures", ["closures.pl"], None, 20),
        ("csv", ["csv.pl", "data.csv"], None, 12),
    ],
    timing=(["timing.pl", "timing.dat"], None),
    hot=["Perl_runops_standard", "Perl_pp_entersub"],
    note="miniperl (perl's interpreter without its XS extensions; the "
         "scripts use no modules)",
)

# ---------------------------------------------------------------- autotools trees

# Debian's patches leave some Makefile.am/configure.ac newer than the
# files generated from them, and make would run automake (not installed):
# every file of the tree gets one time stamp first.
SAME_MTIME = ["find", ".", "-exec", "touch", "-h", "-d", "@1700000000", "{}", "+"]


def autoconf_touched(extra=()):
    return lambda c: [SAME_MTIME] + autoconf(extra)(c)


def make_in(*steps, cflags=()):
    """make -C DIR [TARGET] for each (DIR, TARGET) with the variant's flags
    (after the program's own cflags)."""
    return lambda c: [["make", "-j2", "-C", d] + (t.split() if t else []) +
                      ["CFLAGS=" + flag_str(list(cflags) + c.cflags),
                       "LDFLAGS=" + flag_str(c.ldflags), "MAKEINFO=true"] for d, t in steps]

# ---------------------------------------------------------------- grep

GREP_WORDS = ("kari tome sevu ormon quaex lingor thabel cri monske walfu zype rota "
              "niel isum expra stiqua dorven belcri").split()


def grep_inputs(d, tree, scale):
    mb = 1 << 20
    write(d, "text.txt", text(91, int(12 * mb * scale)))
    write(d, "access.log", log_lines(92, int(12 * mb * scale)))
    write(d, "code.c", source_text(tree, int(4 * mb * scale)))
    write(d, "words.pat", "\n".join(GREP_WORDS) + "\n")
    write(d, "timing.pat", "\n".join([r"[0-9]{4,}[a-z]", r"(ka|ri|to)[a-z]*(me|na)\b",
                                      r"\"user\":\"[a-z]+or", r"[A-Z][a-z]+ [a-z]+, "]) + "\n")
    write(d, "timing.dat", mix(json_lines(101, int(6 * mb)), text(102, int(6 * mb))))


GREP = Program(
    name="grep", package="grep", binary="src/grep",
    # A Debian patch puts a declaration right after a label (lib/dfa.c),
    # which gcc accepts and clang-16 does not: an empty statement between.
    configure=lambda c: [["sed", "-i", "s/^        stray_backslash:$/&;/", "lib/dfa.c"]]
    + autoconf_touched(["--disable-nls", "--disable-perl-regexp"])(c),
    make=make_in(("lib", None), ("src", "grep")),
    inputs=grep_inputs,
    training=[
        ("alt-i", ["-c", "-i", "-E", "kari|tome|sevu|ormon|quaex"] + ["text.txt"] * 20, None, 6),
        ("fixed-f", ["-c", "-F", "-f", "words.pat"] + ["text.txt"] * 20, None, 4),
        ("log-E", ["-c", "-E", r" (4[0-9][0-9]|5[0-9][0-9]) [0-9]+ 0\.[5-9]"]
         + ["access.log"] * 20, None, 8),
        ("code-w", ["-c", "-w", "-E", "if|for|while|return|static"] + ["code.c"] * 20, None, 12),
        ("o-ids", ["-o", "-E", "id=[0-9]+"] + ["access.log"] * 10, None, 10),
        ("v-count", ["-v", "-c", "GET"] + ["access.log"] * 20, None, 12),
    ],
    # the same file ten times: grep reads ~100 MB/s here
    timing=(["-c", "-E", "-f", "timing.pat"] + ["timing.dat"] * 10, None),
    hot=["dfaexec_sb"],
)

# ---------------------------------------------------------------- gzip


def gzip_inputs(d, tree, scale):
    import gzip as gz
    mb = 1 << 20
    write(d, "text.txt", text(111, int(4 * mb * scale)))
    write(d, "code.c", source_text(tree, int(3 * mb * scale)))
    write(d, "access.log", log_lines(112, int(4 * mb * scale)))
    write(d, "noisy.bin", noisy_bytes(113, int(3 * mb * scale)))
    write(d, "events.json.gz", gz.compress(json_lines(114, int(8 * mb * scale)).encode(), 6,
                                           mtime=0))
    write(d, "timing.dat", mix(csv_rows(121, int(2 * mb)), json_lines(122, int(2 * mb)),
                               text(123, int(2 * mb))))


GZIP = Program(
    name="gzip", package="gzip", binary="gzip",
    configure=autoconf_touched(),
    make=make_in(("lib", None), (".", "version.h gzip")),
    inputs=gzip_inputs,
    training=[
        ("text-6", ["-c", "-6", "text.txt"], None),
        ("code-9", ["-c", "-9", "code.c"], None),
        ("log-1", ["-c", "-1", "access.log"], None),
        ("noisy-6", ["-c", "-6", "noisy.bin"], None),
        ("json-d", ["-dc"], "events.json.gz"),
    ],
    timing=(["-c", "-6", "timing.dat"], None),
    hot=["deflate", "longest_match"],
)

# ---------------------------------------------------------------- m4

M4_LIB = r"""divert(-1)
define(`forloop', `pushdef(`$1', `$2')_forloop($@)popdef(`$1')')
define(`_forloop', `$4`'ifelse($1, `$3', `', `define(`$1', incr($1))$0($@)')')
define(`foreach', `pushdef(`$1')_foreach($@)popdef(`$1')')
define(`_arg1', `$1')
define(`_foreach', `ifelse(`$2', `()', `', `define(`$1', _arg1$2)$3`'$0(`$1', (shift$2), `$3')')')
divert`'dnl
"""

M4_TRAIN = {
    "loops.m4": M4_LIB + r"""forloop(`i', 1, 18000, `define(`v'i, eval(i * i % 97))')dnl
forloop(`i', 1, 18000, `ifelse(eval(v`'i > 50), 1, `x')')
forloop(`i', 1, 9000, `format(`%d:%s;', i, substr(`abcdefghijklmnopqrstuvwxyz', eval(i % 20), 5))')
""",
    "strings.m4": M4_LIB + r"""forloop(`i', 1, 7500, `translit(`Hello World number i', `a-z', `A-Z')
patsubst(`the quick brown fox i', `\([a-z]+\)', `<\1>') index(`abcdefghij', `f') regexp(`GNUs not Unix i', `\w\(\w+\)$', `*** \& *** \1 ***')
')
""",
    "lists.m4": M4_LIB + r"""forloop(`j', 1, 900, `foreach(`x', (alpha, beta, gamma, delta, epsilon, zeta, eta, theta, iota, kappa), `len(x)`'x`'j ')
')
""",
}


def m4_inputs(d, tree, scale):
    mb = 1 << 20
    for name, src in M4_TRAIN.items():
        write(d, name, src)
    rng = random.Random(131)
    vocab = vocabulary(random.Random(132), 5000)
    defs = "".join("define(`%s', `%s')" % (w, w.upper()) for w in rng.sample(vocab[:600], 200))
    write(d, "macros.m4", "divert(-1)" + defs + "divert`'dnl\n")
    body = text(132, int(4 * mb * scale)).replace("`", "").replace("'", "")
    write(d, "text.txt", body.replace(",", " ").replace("(", " ").replace(")", " "))
    # (the expansion quotes the word, or it would expand again forever)
    tdefs = "".join("define(`%s', `<`%s'>count(`%s')')" % (w, w, w)
                    for w in rng.sample(vocab[:1500], 400))
    write(d, "timing.m4", M4_LIB + "divert(-1)" + tdefs + r"""
define(`count', `define(`n$1', ifdef(`n$1', `incr(n$1)', 1))')
divert`'dnl
""")
    write(d, "timing.txt", text(141, int(10 * mb)).replace(",", " ").replace("(", " ")
          .replace(")", " "))


M4 = Program(
    name="m4", package="m4", binary="src/m4",
    configure=autoconf_touched(["--disable-nls"]),
    make=make_in(("lib", None), ("src", "m4")),
    inputs=m4_inputs,
    training=[
        ("loops", ["loops.m4"], None, 25),
        ("strings", ["strings.m4"], None, 30),
        ("lists", ["lists.m4"], None, 80),
        ("text", ["macros.m4", "text.txt"], None, 40),
    ],
    timing=(["timing.m4", "timing.txt"], None),
    hot=["expand_input", "next_token"],
)

# ---------------------------------------------------------------- bc

BC_TRAIN = {
    "pi.bc": "scale = 1200; 4 * a(1)\n",
    "exp.bc": "scale = 900; e(1); l(3); s(1)\n",
    "fact.bc": "define f(n) { auto r; r = 1; while (n > 1) r *= n--; return r }\n"
               "x = f(2500); length(x)\nscale = 300; sqrt(2) * sqrt(3)\n",
    "fib.bc": "define fib(n) { if (n < 2) return n; return fib(n - 1) + fib(n - 2) }\n"
              "fib(21)\na = 0; b = 1; for (i = 0; i < 6000; i++) { c = a + b; a = b; b = c }\n"
              "length(b)\n",
}


def bc_inputs(d, tree, scale):
    for name, src in BC_TRAIN.items():
        write(d, name, src)
    write(d, "timing.bc", "scale = 600; c(1); x = 0; "
          "for (i = 1; i <= 400; i++) x += sqrt(i) / i; x\n")


BC = Program(
    name="bc", package="bc", binary="bc/bc",
    configure=autoconf_touched(),
    make=make_in(("lib", None), ("bc", "bc")),
    inputs=bc_inputs,
    training=[
        ("pi", ["-l", "pi.bc"], "/dev/null"),
        ("exp", ["-l", "exp.bc"], "/dev/null"),
        ("fact", ["-l", "fact.bc"], "/dev/null"),
        ("fib", ["-l", "fib.bc"], "/dev/null"),
    ],
    timing=(["-l", "timing.bc"], "/dev/null"),
    hot=["bc_multiply", "execute"],
)

PROGRAMS = {p.name: p for p in (BZIP2, XZ, GAWK, PERL, GREP, GZIP, M4, BC)}
# Screened: instrumented PGO gains at least ~5% on their timing command
# (README.md has the figures); xz, gzip and bc gained 0-2% and are kept
# for --programs only.
DEFAULT = ["bzip2", "gawk", "grep", "m4", "perl"]
SHORT = "bzip2"
