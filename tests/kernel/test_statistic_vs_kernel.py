"""``-m statistic`` against the real kernel (issue 3 item 7, statistic).

Random mode (xt_statistic.c statistic_mt: ``(get_random_u32() & 0x7FFFFFFF) < u32``) is
compared as a distribution, never packet by packet: thousands of new connections (UDP, each a
distinct tuple) go from ``peer`` to the ``node`` (tests/kernel/netsim.py), the per-rule
packet counters of ``iptables-save -c`` are the observed counts, and nfemu's exact
probabilities (``Node.outcomes``, sums of the outcomes whose steps pass a rule) give the
expected counts. The rulesets: kube-proxy style cascades of 2-5 endpoints with kube-proxy's
``%0.10f`` probabilities of 1/(n-i), cascades where every rule is random (some packets fall
through), and independent rules with odd probabilities (0.00001, 0.5, 0.99999, 0, 1, values
that round to 0 or 2^31, ``1e-3``, ``.5``, hex floats, with and without ``!``), in raw, mangle,
filter and nat; and kube-proxy rulesets from bench/gen_kube_dump.py, where the KUBE-SEP DNAT
counters are the endpoint choices.

The statistical check (:func:`goodness_of_fit`): Pearson's chi-square over the categories
expected at least E_MIN (300) times, its p-value exact (binomial) for two cells and from the
chi-square law (the regularized upper incomplete gamma function, :func:`chi2_sf`) for more;
the categories expected fewer times are pooled and tested with an exact two-sided binomial
test; a category nfemu gives probability 0 must stay at 0. Every check runs at
``ALPHA = 1e-4 / MAX_CHECKS``, MAX_CHECKS being an upper bound on the checks one run of this
module makes (Bonferroni), the chi-square law at ALPHA / INFLATION (4: how far the law
understates the tail of Pearson's statistic there, see E_MIN), so a correct nfemu fails a run
with probability below 1e-4. With
the packet counts used here the fixed cases catch an error of two or three percentage points
in a probability, the generated ones of about five (a cascade taken as independent 1/n
draws, a ``!`` ignored, a probability complemented are far beyond that).

Nth mode is deterministic and compared exactly, every rule and policy counter, with one
``Node`` tracing the packets in the order they were sent (its nth counters carry over between
packets and between batches, as the kernel's per-rule counter does). The sender runs pinned to
one CPU (affinity inherited from this process): the packets then go through the node's
per-CPU backlog in order, so the kernel sees them in the order nfemu does.

Examples: NFEMU_KERNEL_EXAMPLES (default 1000) / 100 random-mode rulesets and / 40 nth-mode
ones, besides the fixed cases.
"""
from __future__ import annotations

import contextlib
import importlib.util
import math
import os
import random
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nfemu
from nfemu.host import Host, ip4
from nfemu.node import Node
from nfemu.packet import ICMP, TCP, TCP_SYN, UDP, Packet

KERNEL_EXAMPLES = int(os.environ.get("NFEMU_KERNEL_EXAMPLES", "1000"))
RANDOM_EXAMPLES = max(1, KERNEL_EXAMPLES // 100)
NTH_EXAMPLES = max(1, KERNEL_EXAMPLES // 40)

NODE_IP = "192.168.50.2"
PEER_IP = "192.168.50.1"
PACKETS_PER_CLASS = 4000           # generated random-mode cases: packets per cascade
FIXED_PACKETS = 10000              # fixed cases

# ---- the significance budget ----------------------------------------------------------
# goodness_of_fit() makes at most 2 checks per group of counters (a chi-square and an exact
# binomial test; a count in a category of probability 0 fails outright). Upper bounds on the
# groups: a generated ruleset has at most MAX_BLOCKS blocks of at most MAX_RULES groups
# (independent rules: one group per rule); the fixed tests below have _FIXED_GROUPS.
MAX_BLOCKS, MAX_RULES = 3, 4
_FIXED_GROUPS = 4 + 12 + 2 * 2     # kube cascades, odd probabilities, gen_kube_dump services
MAX_CHECKS = 2 * (_FIXED_GROUPS + RANDOM_EXAMPLES * MAX_BLOCKS * MAX_RULES)
ALPHA_RUN = 1e-4                   # a correct nfemu fails a run of this module this rarely
ALPHA = ALPHA_RUN / MAX_CHECKS     # Bonferroni: each check at this level

# ---- statistics --------------------------------------------------------------------------


def gamma_q(a: float, x: float) -> float:
    """The regularized upper incomplete gamma function Q(a, x) = Γ(a, x) / Γ(a), a > 0:
    1 - (power series of P) for x < a + 1, else its continued fraction (modified Lentz),
    both to double precision; small tail values keep their relative precision."""
    if x <= 0:
        return 1.0
    log_front = -x + a * math.log(x) - math.lgamma(a)
    if x < a + 1:
        term = total = 1.0 / a
        k = a
        while abs(term) > abs(total) * 1e-16:
            k += 1
            term *= x / k
            total += term
        return max(0.0, 1.0 - total * math.exp(log_front))
    tiny = 1e-300
    b = x + 1 - a
    c, d = 1 / tiny, 1 / b
    h = d
    for i in range(1, 100000):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1 / d
        h *= d * c
        if abs(d * c - 1) < 1e-15:
            break
    return math.exp(log_front) * h


def chi2_sf(stat: float, df: int) -> float:
    """P(X >= stat) for X chi-square distributed with df degrees of freedom."""
    return gamma_q(df / 2, stat / 2)


def binom_tail(n: int, p: float, k: int, upper: bool) -> float:
    """P(X >= k) (upper) or P(X <= k) for X ~ Binomial(n, p), 0 < p < 1, summed term by
    term from the log of the probability mass."""
    terms = range(max(k, 0), n + 1) if upper else range(min(k, n) + 1)
    lp, lq, lnf = math.log(p), math.log1p(-p), math.lgamma(n + 1)
    return min(1.0, sum(math.exp(lnf - math.lgamma(i + 1) - math.lgamma(n - i + 1)
                                 + i * lp + (n - i) * lq) for i in terms))


# Pearson's statistic only follows the chi-square law asymptotically, and in the far tail a
# cell with a small expected count (a skewed binomial) makes it exceed a level several times
# over: computed exactly for two cells (one degree of freedom), N = 4000..20000, the true
# probability of passing the chi-square threshold of level a is up to 4.3 a (a = 1e-7) / 11 a
# (1e-9) when a cell expects 100, but at most 2.0 a / 3.2 a when every cell expects at least
# 300. So: cells expecting fewer than E_MIN are pooled and tested exactly (binomial), two
# cells are tested exactly, and a chi-square over three or more cells must pass
# ALPHA / INFLATION.
E_MIN = 300
INFLATION = 4


@dataclass
class Check:
    what: str
    statistic: float        # Pearson's chi-square, or the count for a binomial test
    df: int
    pvalue: float
    exact: bool             # exact binomial p-value (else the chi-square approximation)

    def __str__(self) -> str:
        law = "exact binomial" if self.exact else "chi-square law"
        return (f"{self.what}: statistic {self.statistic:.3f} df {self.df} "
                f"p {self.pvalue:.3g} ({law})")


def two_sided(n: int, p: float, k: int) -> float:
    """Two-sided binomial p-value of K successes in N trials: twice the smaller tail."""
    return min(1.0, 2 * min(binom_tail(n, p, k, False), binom_tail(n, p, k, True)))


def goodness_of_fit(observed: list[int], probs: list[Fraction]) -> list[Check]:
    """Compare counts with category probabilities (which add up to 1): categories expected
    fewer than E_MIN times are pooled (an exact binomial test, then merged into the largest
    cell); the cells left get Pearson's chi-square, its p-value exact (binomial) for two
    cells, from the chi-square law for more. A count in a category of probability 0 gives a
    p-value 0. At most 2 checks besides that one."""
    n = sum(observed)
    assert sum(probs) == 1, probs
    checks = []
    impossible = [i for i, p in enumerate(probs) if p == 0 and observed[i]]
    if impossible:
        checks.append(Check(f"categories {impossible} have probability 0 but counts "
                            f"{[observed[i] for i in impossible]}", math.inf, 0, 0.0, True))
    live = [i for i, p in enumerate(probs) if p > 0]
    expected = {i: n * float(probs[i]) for i in live}
    cells = [[observed[i], expected[i]] for i in live if expected[i] >= E_MIN]
    small = [i for i in live if expected[i] < E_MIN]
    if small:
        o_s, p_s = sum(observed[i] for i in small), float(sum(probs[i] for i in small))
        if n * p_s >= E_MIN:
            cells.append([o_s, n * p_s])
        elif cells:
            checks.append(Check(f"categories {small} pooled: {o_s} seen, {n * p_s:.4g} "
                                "expected", o_s, 0, two_sided(n, p_s, o_s), True))
            largest = max(cells, key=lambda c: c[1])
            largest[0] += o_s
            largest[1] += n * p_s
    if len(cells) >= 2:
        stat = sum((o - e) ** 2 / e for o, e in cells)
        what = (f"{len(cells)} cells (observed {[o for o, _ in cells]}, expected "
                f"{[round(e, 1) for _, e in cells]})")
        if len(cells) == 2:
            checks.append(Check(what, stat, 1, two_sided(n, cells[0][1] / n, cells[0][0]),
                                True))
        else:
            checks.append(Check(what, stat, len(cells) - 1, chi2_sf(stat, len(cells) - 1),
                                False))
    return checks


def assert_fits(observed: list[int], probs: list[Fraction], context: str) -> list[Check]:
    """goodness_of_fit() at the module's levels (ALPHA for exact p-values, ALPHA /
    INFLATION for the chi-square law); prints every check (pytest -s shows them)."""
    checks = goodness_of_fit(observed, probs)
    for c in checks:
        print(f"[statistic] {context}: {c}")
    bad = [c for c in checks if c.pvalue < (ALPHA if c.exact else ALPHA / INFLATION)]
    assert not bad, (f"{context}: the kernel's counts do not fit nfemu's probabilities "
                     f"(alpha {ALPHA:.3g}, chi-square law {ALPHA / INFLATION:.3g})\n"
                     + "\n".join(map(str, bad))
                     + f"\nobserved {observed}\nnfemu {[str(p) for p in probs]}")
    return checks


def test_statistics_helpers():
    """The p-value functions against textbook values (and scipy when it is installed)."""
    # chi-square critical values: df 1 at 0.05, df 4 at 0.01, df 10 at 0.001
    assert abs(chi2_sf(3.841459, 1) - 0.05) < 1e-6
    assert abs(chi2_sf(13.276704, 4) - 0.01) < 1e-7
    assert abs(chi2_sf(29.588298, 10) - 0.001) < 1e-8
    assert abs(chi2_sf(2.0, 2) - math.exp(-1)) < 1e-15        # df 2: exp(-x/2)
    assert chi2_sf(0, 3) == 1.0
    # binomial: n = 3, p = 1/2
    assert abs(binom_tail(3, 0.5, 2, True) - 0.5) < 1e-15
    assert abs(binom_tail(3, 0.5, 0, False) - 0.125) < 1e-15
    fit = goodness_of_fit([500, 500], [Fraction(1, 2), Fraction(1, 2)])
    assert len(fit) == 1 and fit[0].statistic == 0 and fit[0].pvalue == 1.0 and fit[0].exact
    bad = goodness_of_fit([900, 100], [Fraction(1, 2), Fraction(1, 2)])
    assert bad[0].pvalue < 1e-100
    three = goodness_of_fit([1000, 1000, 1000], [Fraction(1, 3)] * 3)
    assert len(three) == 1 and three[0].df == 2 and three[0].pvalue == 1.0
    skewed = goodness_of_fit([1150, 950, 900], [Fraction(1, 3)] * 3)   # chi-square 35
    assert abs(skewed[0].pvalue / math.exp(-35 / 2) - 1) < 1e-12      # df 2: exp(-x/2)
    rare = goodness_of_fit([995, 5], [1 - Fraction(1, 10**5), Fraction(1, 10**5)])
    assert len(rare) == 1 and 1e-12 < rare[0].pvalue < 2e-12    # 2 * 0.01^5 / 5! roughly
    assert goodness_of_fit([3, 1], [Fraction(1), Fraction(0)])[0].pvalue == 0.0
    try:
        from scipy import stats
    except ImportError:
        return
    for x, df in ((0.5, 1), (7.3, 3), (40.0, 4), (150.0, 20), (3.0, 9), (1000.0, 7)):
        ref = stats.chi2.sf(x, df)
        assert abs(chi2_sf(x, df) - ref) <= 1e-10 * ref + 1e-300, (x, df)
    for n, p, k in ((4000, 1e-5, 2), (20000, 0.3, 6100), (20000, 0.3, 5900)):
        assert abs(binom_tail(n, p, k, True) - stats.binom.sf(k - 1, n, p)) < 1e-9
        assert abs(binom_tail(n, p, k, False) - stats.binom.cdf(k, n, p)) < 1e-9


# ---- sending -----------------------------------------------------------------------------


@contextlib.contextmanager
def one_cpu():
    """Pin this process (and so the sender it starts in the peer namespace) to one CPU: the
    kernel then handles the packets in the order they are sent (one per-CPU backlog)."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(before)})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def udp_class(dport: int, count: int, payload: int = 0) -> list[Packet]:
    """COUNT new UDP connections from the peer to the node's DPORT (source ports differ)."""
    src, dst = ip4(PEER_IP), ip4(NODE_IP)
    return [Packet(src=src, dst=dst, proto=UDP, sport=1024 + i, dport=dport,
                   payload=bytes(payload)) for i in range(count)]


def outcome_probability(node: Node, pkt: Packet, iface: str, keys: list[tuple]) -> list[Fraction]:
    """For each step key (table, chain, 1-based rule): nfemu's exact probability that PKT
    passes that rule (the sum over ``Node.outcomes`` whose steps contain it)."""
    out = [Fraction(0)] * len(keys)
    outcomes = node.outcomes(pkt, iface=iface)
    assert sum(o.probability for o in outcomes) == 1
    for o in outcomes:
        seen = {(s.table, s.chain, s.rule) for s in o.journey.steps}
        for j, k in enumerate(keys):
            if k in seen:
                out[j] += o.probability
    return out


# ---- random mode: rulesets -----------------------------------------------------------------

BASE_CHAIN = {"raw": "PREROUTING", "mangle": "PREROUTING", "nat": "PREROUTING",
              "filter": "INPUT"}
BUILTINS = {"raw": ("PREROUTING", "OUTPUT"),
            "mangle": ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"),
            "nat": ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"),
            "filter": ("INPUT", "FORWARD", "OUTPUT")}
# probabilities as written to iptables-restore (strtod): odd ones, exact ones, ones that round
# to 0 or to 2^31 (lround(p * 2^31)), other spellings
ODD = ["0.00001", "0.5", "0.99999", "0", "1", "0.0000000001", "0.9999999999", "0.0000000004",
       "1e-3", ".5", "0x1p-3", "0.3333333333", "0.25", "0.7", "0.1", "0.95"]


def kube_probability(remaining: int) -> str:
    """What kube-proxy passes for the i-th of n endpoints: ``%0.10f`` of 1/(n-i)."""
    return f"{1.0 / remaining:0.10f}"


@dataclass(frozen=True)
class Block:
    """A user chain NAME in TABLE reached by the UDP packets to DPORT. ``cascade``: rule k
    (``[!] --probability probs[k]``, or no statistic when probs[k] is None) jumps to
    NAME-E{k}, so the first match wins (kube-proxy's KUBE-SVC); otherwise the rules have no
    target and every packet meets all of them."""

    table: str
    name: str
    dport: int
    probs: tuple[str | None, ...]
    inverts: tuple[bool, ...]
    cascade: bool

    def statistic(self, k: int) -> str:
        if self.probs[k] is None:
            return ""
        inv = "! " if self.inverts[k] else ""
        return f" -m statistic --mode random {inv}--probability {self.probs[k]}"

    def endpoint_port(self, k: int) -> int:
        return 6000 + 10 * (self.dport - 1000) + k

    def lines(self) -> dict[str, list[str]]:
        """Rules by chain (the dispatch rule in the table's base chain first)."""
        out = {BASE_CHAIN[self.table]: [(f"-A {BASE_CHAIN[self.table]} -p udp -m udp "
                                         f"--dport {self.dport} -j {self.name}")]}
        rules = []
        for k in range(len(self.probs)):
            target = f" -j {self.name}-E{k}" if self.cascade else ""
            rules.append(f"-A {self.name}{self.statistic(k)}{target}")
            if self.cascade:
                if self.table == "nat":
                    end = (f"-A {self.name}-E{k} -p udp -m udp -j DNAT --to-destination "
                           f"{NODE_IP}:{self.endpoint_port(k)}")
                else:
                    end = f"-A {self.name}-E{k} -j ACCEPT"
                out[f"{self.name}-E{k}"] = [end]
        out[self.name] = rules
        return out

    def groups(self) -> list[tuple[list[int], bool]]:
        """The rule indexes (0-based in NAME) whose counters are one multinomial draw, and
        whether the packets that match none of them form a category of their own."""
        if self.cascade:
            return [(list(range(len(self.probs))), self.probs[-1] is not None)]
        return [([k], True) for k in range(len(self.probs))]


def ruleset_text(blocks: list[Block]) -> str:
    by_table: dict[str, dict[str, list[str]]] = {}
    for b in blocks:
        chains = by_table.setdefault(b.table, {})
        for chain, rules in b.lines().items():
            chains.setdefault(chain, []).extend(rules)
    out = []
    for table in ("raw", "mangle", "nat", "filter"):
        if table not in by_table:
            continue
        chains = by_table[table]
        out.append(f"*{table}")
        out += [f":{c} ACCEPT [0:0]" for c in BUILTINS[table]]
        out += [f":{c} - [0:0]" for c in sorted(chains) if c not in BUILTINS[table]]
        for c in chains:
            out += chains[c]
        out.append("COMMIT")
    return "\n".join(out) + "\n"


def random_blocks(seed: int) -> list[Block]:
    """1-MAX_BLOCKS blocks drawn from random.Random(SEED): kube cascades of 2-5 endpoints,
    cascades and independent rules of 1-MAX_RULES odd or arbitrary (6-decimal)
    probabilities, each negated or not, in any of raw, mangle, nat, filter."""
    rng = random.Random(seed)
    out = []
    for i in range(rng.randint(1, MAX_BLOCKS)):
        table = rng.choice(list(BASE_CHAIN))
        kind = rng.choice(["kube", "cascade", "independent"])
        if kind == "kube":
            n = rng.randint(2, 5)
            probs = tuple(kube_probability(n - k) for k in range(n - 1)) + (None,)
            inverts = (False,) * n
        else:
            m = rng.randint(1, MAX_RULES)
            probs = tuple(rng.choice(ODD) if rng.random() < 0.5 else f"{rng.random():.6f}"
                          for _ in range(m))
            inverts = tuple(rng.random() < 0.5 for _ in range(m))
            if kind == "cascade" and rng.random() < 0.5:
                probs = probs[:-1] + (None,)
        out.append(Block(table, f"S{i}", 1001 + i, probs, inverts, kind != "independent"))
    return out


def run_random_case(blocks: list[Block], per_class: int) -> list[Check]:
    """Load BLOCKS, send PER_CLASS new connections to each block, and fit every group's
    counters to nfemu's probabilities. The totals entering each block are compared exactly."""
    from tests.kernel.netsim import Net, kernel_counters

    text = ruleset_text(blocks)
    ruleset = nfemu.loads(text)
    node = Node(ruleset, Host.from_options([f"eth0={NODE_IP}/24"]), seed=1)
    classes = {b.dport: udp_class(b.dport, per_class) for b in blocks}
    with Net() as net:
        net.load(text)
        net.send([p.to_bytes() for pkts in classes.values() for p in pkts])
        kernel = kernel_counters(net.save().ruleset)
    checks = []
    for b in blocks:
        base = BASE_CHAIN[b.table]
        dispatch = [o.name for o in blocks if o.table == b.table].index(b.name)
        assert kernel[(b.table, base, dispatch)][0] == per_class, text
        for rules, rest in b.groups():
            observed = [kernel[(b.table, b.name, k)][0] for k in rules]
            probs = outcome_probability(node, classes[b.dport][0], "eth0",
                                        [(b.table, b.name, k + 1) for k in rules])
            if rest:
                observed.append(per_class - sum(observed))
                probs.append(1 - sum(probs))
            else:
                assert sum(observed) == per_class, (text, observed)
            context = f"{b.table} {b.name} rules {rules} probabilities " + ",".join(
                f"{'!' if b.inverts[k] else ''}{b.probs[k]}" for k in rules)
            checks += assert_fits(observed, probs, context)
            if b.cascade:
                # each endpoint chain's rule counts what its jump sent there
                for k in rules:
                    assert kernel[(b.table, f"{b.name}-E{k}", 0)][0] == observed[rules.index(k)]
    return checks


def test_kube_cascades(kernel):
    """kube-proxy's KUBE-SVC cascades of 2, 3, 4 and 5 endpoints (filter INPUT), FIXED_PACKETS
    new connections each."""
    blocks = [Block(("filter", "mangle", "nat", "raw")[n - 2], f"SVC{n}", 1000 + n,
                    tuple(kube_probability(n - k) for k in range(n - 1)) + (None,),
                    (False,) * n, True) for n in (2, 3, 4, 5)]
    run_random_case(blocks, FIXED_PACKETS)


def test_odd_probabilities(kernel):
    """Independent rules with odd probabilities, negated or not (raw PREROUTING)."""
    probs = ("0.00001", "0.5", "0.99999", "0.00001", "0.99999", "0", "1", "0.9999999999",
             "0.0000000004", "1e-3", "0x1p-3", ".5")
    inverts = (False, False, False, True, True, False, True, False, True, False, True, False)
    run_random_case([Block("raw", "ODD", 1100, probs, inverts, False)], FIXED_PACKETS)


@pytest.mark.parametrize("seed", range(RANDOM_EXAMPLES))
def test_random_blocks(kernel, seed):
    """Rulesets from random_blocks(SEED) (seeded, not hypothesis: a statistical check must
    not be re-run by shrinking, and the number of checks must stay within the budget)."""
    run_random_case(random_blocks(seed), PACKETS_PER_CLASS)


# ---- random mode: kube-proxy rulesets from bench/gen_kube_dump.py --------------------------


def _gen_kube_dump():
    path = Path(__file__).resolve().parents[2] / "bench" / "gen_kube_dump.py"
    spec = importlib.util.spec_from_file_location("gen_kube_dump", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("endpoints", [2, 5])
def test_kube_dump_endpoint_distribution(kernel, endpoints):
    """bench/gen_kube_dump.py with 2 services of ENDPOINTS endpoints: FIXED_PACKETS / 2 TCP
    SYNs to each cluster IP from the peer, DNATed to pods behind peer2 and masqueraded.
    Counters outside the statistic rules and the KUBE-SEP chains are deterministic and must
    equal nfemu's exactly (every packet traced); the KUBE-SEP DNAT counters (the endpoint
    each connection got) must fit nfemu's exact endpoint probabilities."""
    from tests.kernel.netsim import Net, kernel_counters

    gen = _gen_kube_dump()
    text = gen.generate(2, endpoints)
    ruleset = nfemu.loads(text)
    host = Host.from_options([f"eth0={NODE_IP}/24", "eth1=10.50.0.1/24"],
                             default_gateway="10.50.0.2")
    node = Node(ruleset, host, seed=7)
    per_service = FIXED_PACKETS // 2
    pkts = [Packet(src=ip4(PEER_IP), dst=ip4(gen.cluster_ip(s)), proto=TCP, sport=1024 + i,
                   dport=gen.SERVICE_PORT, tcp_flags=TCP_SYN, tcp_window=64240)
            for s in range(2) for i in range(per_service)]
    for p in pkts:
        node.trace(p, iface="eth0")
    with Net(forward=True, default_route=True) as net:
        net.load(text)
        net.send([p.to_bytes() for p in pkts])
        kernel_side = kernel_counters(net.save().ruleset)

    def random_part(key) -> bool:
        _, chain, rule = key
        return chain.startswith("KUBE-SEP-") or (chain.startswith("KUBE-SVC-")
                                                  and rule is not None and rule >= 1)

    exact = {k: v for k, v in kernel_side.items() if not random_part(k)}
    ours = {k: node.counters.get(k, (0, 0)) for k in exact}
    assert ours == exact, "\n".join(f"{k}: kernel {exact[k]} nfemu {ours[k]}"
                                    for k in exact if exact[k] != ours[k])
    for s in range(2):
        spn = gen.service_port_name(s)
        seps = [gen.sep_chain(spn, f"{gen.endpoint_ip(s * endpoints + k)}:{gen.TARGET_PORT}")
                for k in range(endpoints)]
        observed = [kernel_side[("nat", sep, 1)][0] for sep in seps]
        assert sum(observed) == per_service
        probs = outcome_probability(node, pkts[s * per_service], "eth0",
                                    [("nat", sep, 2) for sep in seps])
        assert_fits(observed, probs, f"{spn} ({endpoints} endpoints)")
        # the cascade rule k (after the masquerade rule) counts what KUBE-SEP k's DNAT counts
        for k in range(endpoints):
            assert kernel_side[("nat", gen.svc_chain(spn), k + 1)][0] == observed[k]


# ---- nth mode: exact ---------------------------------------------------------------------

NTH_CHAINS = ("N1", "N2")           # the base chain may enter both; N1 may enter N2


@st.composite
def nth_match(draw) -> str:
    every = draw(st.integers(1, 6))
    packet = draw(st.integers(0, every - 1))
    inv = draw(st.sampled_from(["", "", "! "]))
    return f"-m statistic --mode nth {inv}--every {every} --packet {packet}"


@st.composite
def nth_rule(draw, table: str, chain: str) -> str:
    parts = [f"-A {chain}"]
    proto = draw(st.sampled_from([None, None, "tcp", "udp", "icmp", "! udp"]))
    if proto:
        parts.append(f"! -p {proto[2:]}" if proto.startswith("!") else f"-p {proto}")
    if draw(st.integers(0, 3)) == 0:
        parts.append(f"-m mark --mark {draw(st.sampled_from(['0x1', '0x2', '0x1/0x1']))}")
    if draw(st.integers(0, 4)):
        parts.append(draw(nth_match()))
    callees = {"N1": ["N2"], "N2": []}.get(chain, list(NTH_CHAINS))
    # no DROP in nat (not a nat verdict) nor raw (netsim's arrival counter sits at raw's
    # priority, -300, and would not see the packet)
    options = ["none", "MARK", "MARK", "ACCEPT", "RETURN"] + (
        ["DROP"] if table in ("mangle", "filter") else [])
    if callees:
        options += ["jump", "jump", "goto"]
    kind = draw(st.sampled_from(options))
    if kind == "MARK":
        parts.append(draw(st.sampled_from(["-j MARK --set-xmark 0x1/0x1",
                                           "-j MARK --set-xmark 0x2/0x3",
                                           "-j MARK --set-xmark 0x0/0x1"])))
    elif kind in ("jump", "goto"):
        parts.append(f"-{kind[0]} {draw(st.sampled_from(callees))}")
    elif kind != "none":
        parts.append(f"-j {kind}")
    return " ".join(parts)


@st.composite
def nth_ruleset(draw) -> str:
    tables = draw(st.lists(st.sampled_from(list(BASE_CHAIN)), min_size=1, max_size=2,
                           unique=True))
    out = []
    for table in ("raw", "mangle", "nat", "filter"):
        if table not in tables:
            continue
        base = BASE_CHAIN[table]
        out.append(f"*{table}")
        out += [f":{c} ACCEPT [0:0]" for c in BUILTINS[table]]
        out += [f":{c} - [0:0]" for c in NTH_CHAINS]
        for chain, most in ((base, 6), ("N1", 4), ("N2", 3)):
            out += [draw(nth_rule(table, chain)) for _ in range(draw(st.integers(0, most)))]
        out.append("COMMIT")
    return "\n".join(out) + "\n"


@st.composite
def nth_batches(draw) -> list[list[Packet]]:
    """1-3 batches of new connections (TCP SYN, UDP, ICMP echo; payloads of various sizes)."""
    src, dst = ip4(PEER_IP), ip4(NODE_IP)
    batches, serial = [], 0
    for _ in range(draw(st.integers(1, 3))):
        batch = []
        for _ in range(draw(st.integers(1, 25))):
            serial += 1
            proto = draw(st.sampled_from([TCP, UDP, ICMP]))
            payload = bytes(draw(st.sampled_from([0, 1, 7, 30])))
            if proto == ICMP:
                batch.append(Packet(src=src, dst=dst, proto=ICMP, icmp_type=8,
                                    icmp_rest=serial << 16 | 1, payload=payload))
            else:
                batch.append(Packet(src=src, dst=dst, proto=proto, sport=2000 + serial,
                                    dport=draw(st.sampled_from([22, 53, 80])), payload=payload,
                                    tcp_flags=TCP_SYN if proto == TCP else 0))
        batches.append(batch)
    return batches


def run_nth_case(text: str, batches: list[list[Packet]]) -> None:
    from tests.kernel.netsim import Net, kernel_counters

    node = Node(nfemu.loads(text), Host.from_options([f"eth0={NODE_IP}/24"]), seed=1)
    for batch in batches:
        for p in batch:
            node.trace(p, iface="eth0")
    with Net() as net, one_cpu():
        net.load(text)
        for batch in batches:
            net.send([p.to_bytes() for p in batch])
        saved = net.save()
    kernel_side = kernel_counters(saved.ruleset)
    ours = {k: node.counters.get(k, (0, 0)) for k in kernel_side}
    extra = {k: v for k, v in node.counters.items() if k not in kernel_side and v != (0, 0)}
    sent = "\n".join(" | ".join(p.describe() for p in b) for b in batches)
    assert ours == kernel_side and not extra, (
        f"counters differ\n--- rules\n{text}--- packets (batches)\n{sent}\n--- kernel\n"
        f"{saved.text}--- differing (kernel, nfemu)\n"
        + "\n".join(f"{k}: {kernel_side[k]} vs {ours[k]}" for k in kernel_side
                    if kernel_side[k] != ours[k])
        + "".join(f"\n{k}: only nfemu {v}" for k, v in extra.items()))


@settings(max_examples=NTH_EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(text=nth_ruleset(), batches=nth_batches())
def test_nth_matches_kernel(kernel, text, batches):
    run_nth_case(text, batches)


def test_nth_fixed(kernel):
    """A hand-written nth case: the counter carries over between packets and batches, a user
    chain reached from two rules shares its rule's counter, ``!`` inverts, every 1 always
    matches, and nat PREROUTING (new connections only) counts like the others."""
    text = """*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -m statistic --mode nth --every 3 --packet 2
-A PREROUTING -p udp -m statistic --mode nth ! --every 2 --packet 0
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:N1 - [0:0]
-A INPUT -p tcp -j N1
-A INPUT -p udp -j N1
-A INPUT -m statistic --mode nth --every 1 --packet 0 -j MARK --set-xmark 0x1/0x1
-A N1 -m statistic --mode nth --every 4 --packet 1 -j ACCEPT
-A N1 -m statistic --mode nth --every 2 --packet 1
COMMIT
"""
    src, dst = ip4(PEER_IP), ip4(NODE_IP)

    def packet(serial: int) -> Packet:
        proto = (TCP, UDP, ICMP)[serial % 3]
        if proto == ICMP:
            return Packet(src=src, dst=dst, proto=ICMP, icmp_type=8, icmp_rest=serial << 16,
                          payload=bytes(serial % 5))
        return Packet(src=src, dst=dst, proto=proto, sport=3000 + serial, dport=80,
                      payload=bytes(serial % 5), tcp_flags=TCP_SYN if proto == TCP else 0)
    batches = [[packet(100 * b + i) for i in range(n)] for b, n in enumerate((5, 11, 7))]
    run_nth_case(text, batches)
