"""One iptables command line (a rule or chain command of iptables-restore input) to IR.

Mirrors iptables' ``do_parse()`` (iptables/xshared.c) and getopt_long(3): the original
options, extension options merged in as extensions are loaded (newest first, so a later
``-m`` can shadow an earlier one's options), unique-prefix abbreviations (``--dport`` after
``-m multiport`` is multiport's ``--dports``), ``!`` before an option, the implicit protocol
match loaded by the first unknown option after ``-p tcp``, and the extension's own checks.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from . import protocols
from .errors import Location, ParseError, ValidationError
from .ext import MATCHES, TARGETS
from .ext.base import Given, RuleContext
from .ext.tcp import Tcp
from .ext.udp import Udp
from .nftnative import merge_native
from .ir import Address, Counters, Family, Goto, Jump, Rule, STANDARD_VERDICTS, Verdict
from .util import ipv4_to_int, ipv6_to_int, parse_c_uint, prefix_to_mask

# iptables' own long options (original_opts in iptables/iptables.c): name, has_arg, letter.
# has_arg: 0 none, 1 required, 2 optional (only in the --opt=value form).
CORE_LONG = (
    ("append", 1, "A"), ("delete", 1, "D"), ("check", 1, "C"), ("insert", 1, "I"),
    ("replace", 1, "R"), ("list", 2, "L"), ("list-rules", 2, "S"), ("flush", 2, "F"),
    ("zero", 2, "Z"), ("new-chain", 1, "N"), ("delete-chain", 2, "X"),
    ("rename-chain", 1, "E"), ("policy", 1, "P"), ("source", 1, "s"),
    ("destination", 1, "d"), ("src", 1, "s"), ("dst", 1, "d"), ("protocol", 1, "p"),
    ("in-interface", 1, "i"), ("jump", 1, "j"), ("table", 1, "t"), ("match", 1, "m"),
    ("numeric", 0, "n"), ("out-interface", 1, "o"), ("verbose", 0, "v"), ("wait", 2, "w"),
    ("wait-interval", 2, "W"), ("exact", 0, "x"), ("fragments", 0, "f"), ("version", 0, "V"),
    ("help", 2, "h"), ("line-numbers", 0, "0"), ("modprobe", 1, "M"),
    ("set-counters", 1, "c"), ("goto", 1, "g"), ("ipv4", 0, "4"), ("ipv6", 0, "6"),
)
# The short option string "-:A:C:D:R:I:L::S::M:F::Z::N:X::E:P:Vh::o:p:s:d:j:i:fbvw::W::nt:m:xc:g:46"
CORE_SHORT = {
    "A": 1, "C": 1, "D": 1, "R": 1, "I": 1, "L": 2, "S": 2, "M": 1, "F": 2, "Z": 2, "N": 1,
    "X": 2, "E": 1, "P": 1, "V": 0, "h": 2, "o": 1, "p": 1, "s": 1, "d": 1, "j": 1, "i": 1,
    "f": 0, "b": 0, "v": 0, "w": 2, "W": 2, "n": 0, "t": 1, "m": 1, "x": 0, "c": 1, "g": 1,
    "4": 0, "6": 0,
}
COMMANDS = "ACDRILSFZNXEP"
NAT_DROP = ('The "nat" table is not intended for filtering, the use of DROP is therefore '
            'inhibited.')
_CORE_ENTRIES = tuple((n, h, l) for n, h, l in CORE_LONG)
_CORE_EXACT = {}
for _entry in _CORE_ENTRIES:
    _CORE_EXACT.setdefault(_entry[0], _entry)
XT_EXTENSION_MAXNAMELEN = 29
IFNAMSIZ = 16


@dataclass
class Command:
    """A parsed command line of iptables-restore input."""

    op: str                      # one of A I D R N X F Z P E C
    chain: str | None = None
    rulenum: int | None = None
    rules: list[Rule] = field(default_factory=list)  # more than one when -s/-d list addresses
    policy: str | None = None
    new_name: str | None = None
    counters: Counters | None = None
    loc: Location = field(default_factory=Location)


@dataclass
class _Loaded:
    """An extension instance loaded on this line, collecting its options."""

    spec: object
    ctx: RuleContext
    given: list[Given] = field(default_factory=list)
    completed: bool = False


class _Args:
    """The argv of one line with getopt's cursor."""

    def __init__(self, tokens: list[tuple[str, int]], file: str, line: int):
        self.tokens = tokens
        self.pos = 0
        self.file = file
        self.line = line

    def loc(self, index: int | None = None) -> Location:
        i = self.pos if index is None else index
        col = self.tokens[i][1] if i < len(self.tokens) else (
            self.tokens[-1][1] + len(self.tokens[-1][0]) if self.tokens else 1)
        return Location(self.file, self.line, col)

    def has_arg(self) -> bool:
        """xs_has_arg(): the next word exists and does not start with - or !."""
        return self.pos < len(self.tokens) and self.tokens[self.pos][0][:1] not in ("-", "!")

    def take(self) -> str:
        text = self.tokens[self.pos][0]
        self.pos += 1
        return text


def parse_command(tokens: list[tuple[str, int]], table: str, family: Family = Family.IPV4,
                  file: str = "<string>", line: int = 0,
                  counters_prefix: Counters | None = None) -> Command:
    """Parse the words of one rule/command line (after the optional ``[p:b]`` prefix)."""
    return _Parser(tokens, table, family, file, line, counters_prefix).run()


class _Parser:
    def __init__(self, tokens, table, family, file, line, counters_prefix):
        self.args = _Args(tokens, file, line)
        self.table = table
        self.family = family
        self.file = file
        self.line = line
        self.command: str | None = None
        self.command_loc: Location | None = None
        self.cmd = Command(op="?", loc=Location(file, line, tokens[0][1] if tokens else 1))
        self.counters_prefix = counters_prefix
        self.invert = False
        self.seen: set[str] = set()   # generic options given once
        self.src: list[Address] = []
        self.dst: list[Address] = []
        self.src_inv = self.dst_inv = False
        self.in_iface = self.out_iface = ""
        self.in_inv = self.out_inv = False
        self.proto = 0
        self.proto_text: str | None = None
        self.proto_inv = False
        self.proto_used = False
        self.fragment: bool | None = None
        self.matches: list[_Loaded] = []
        self.target: _Loaded | None = None
        self.jumpto: str | None = None
        self.goto = False
        self.target_loc: Location | None = None
        self.set_counters: Counters | None = None
        # merged long options in getopt's order: (name, has_arg, owner), owner a core letter
        # or (ext key, Opt); ``exact`` indexes the first entry of each name.
        self.long_opts: list[tuple[str, int, object]] = list(_CORE_ENTRIES)
        self.n_core = len(_CORE_ENTRIES)
        self.exact: dict[str, tuple] = dict(_CORE_EXACT)

    # -- errors -------------------------------------------------------------------------
    def error(self, message: str, index: int | None = None) -> ParseError:
        return ParseError(message, self.args.loc(index))

    # -- getopt -------------------------------------------------------------------------
    def _merge(self, spec, key) -> None:
        new = [(o.name, 0 if o.nargs == 0 else 1, (key, o)) for o in spec.options]
        self.long_opts[self.n_core:self.n_core] = new
        for entry in new:
            if entry[0] not in _CORE_EXACT:
                self.exact[entry[0]] = entry

    def _lookup_long(self, name: str, index: int):
        entry = self.exact.get(name)
        if entry is not None:
            return entry
        found = [o for o in self.long_opts if o[0].startswith(name)]
        if not found:
            return None
        first = found[0]
        for o in found[1:]:
            if o[1] != first[1] or _owner_id(o[2]) != _owner_id(first[2]):
                names = " ".join("--" + f[0] for f in found)
                # getopt_long returns '?' for an ambiguous prefix, which iptables reports as
                # an unknown option.
                raise self.error(f"unknown option \"--{name}\" (an ambiguous abbreviation of "
                                 f"{names})", index)
        return first

    def run(self) -> Command:
        args = self.args
        toks = args.tokens
        while args.pos < len(toks):
            index = args.pos
            word = args.take()
            if word.startswith("--") and len(word) > 2:
                name, eq, value = word[2:].partition("=")
                opt = self._lookup_long(name, index)
                if opt is None:
                    if self._try_load_proto(index):
                        continue
                    raise self._unknown(word, index)
                _, has_arg, owner = opt
                if has_arg == 0 and eq:
                    # getopt_long returns '?' here, which iptables reports like this
                    raise self.error(f"unknown option \"{word}\" (--{opt[0]} takes no "
                                     "argument)", index)
                optarg = None
                if eq and not isinstance(owner, tuple):
                    # iptables 1.8.9 takes the whole word as the argument of its own options
                    # given as --name=value (seen: "unknown protocol "--protocol=udp"").
                    optarg = word
                elif eq:
                    optarg = value
                elif has_arg == 1:
                    if args.pos >= len(toks):
                        raise self.error(f"option \"{word}\" requires an argument", index)
                    optarg = args.take()
                self._dispatch(owner, optarg, index, "--" + opt[0])
            elif word.startswith("-") and len(word) > 1 and word != "--":
                i = 1
                while i < len(word):
                    letter = word[i]
                    if letter not in CORE_SHORT:
                        raise self._unknown("-" + letter, index)
                    has_arg = CORE_SHORT[letter]
                    optarg = None
                    if has_arg:
                        rest = word[i + 1:]
                        if rest:
                            optarg = rest
                        elif has_arg == 1:
                            if args.pos >= len(toks):
                                raise self.error(f"option \"-{letter}\" requires an argument", index)
                            optarg = args.take()
                        self._dispatch(letter, optarg, index, "-" + letter)
                        break
                    self._dispatch(letter, None, index, "-" + letter)
                    i += 1
            else:
                if word == "!":
                    if self.invert:
                        raise self.error("multiple consecutive ! not allowed", index)
                    self.invert = True
                    continue
                raise self.error(f"Bad argument `{word}'", index)
        return self._finish()

    def _unknown(self, word: str, index: int) -> ParseError:
        hint = ""
        if word.lstrip("-") in ("dport", "sport", "dports", "sports", "destination-port",
                                "source-port", "syn", "tcp-flags", "icmp-type"):
            hint = " (port and flag options need -p tcp, udp, sctp or icmp before them)"
        return self.error(f"unknown option \"{word}\"{hint}", index)

    # -- the implicit protocol match (load_proto in xshared.c) --------------------------
    def _try_load_proto(self, index: int) -> bool:
        if self.proto_text is None or self.proto_used:
            return False
        if self.proto == 0 and self.proto_inv:
            raise self.error("rule would never match protocol", index)
        # find_proto(): the match named like the protocol (a number is named first);
        # ICMPv6's match is "icmp6" whichever way -p spelled it.
        name = protocols.protocol_name(self.proto) if parse_c_uint(self.proto_text) is not None \
            else self.proto_text
        spec = MATCHES.get("icmp6" if self.proto == protocols.ICMPV6 else name)
        if spec is None:
            return False
        self.proto_used = True
        self._load_match(spec, index)
        self.args.pos = index  # rerun getopt on the same word
        return True

    def _load_match(self, spec, index: int) -> None:
        for loaded in self.matches:
            if loaded.spec is spec:
                loaded.completed = True
        clone = any(m.spec is spec for m in self.matches)
        ctx = RuleContext(self.family, self.table, self.proto, self.proto_inv,
                          self.args.loc(index), self.proto_text is not None)
        self.matches.append(_Loaded(spec, ctx))
        if not clone:
            self._merge(spec, ("m", spec.name))

    # -- one option ---------------------------------------------------------------------
    def _dispatch(self, owner, optarg: str | None, index: int, spelled: str) -> None:
        if isinstance(owner, tuple):
            (kind, name), opt = owner
            loaded = self.target if kind == "t" else next(
                (m for m in self.matches if m.spec.name == name and not m.completed), None)
            if loaded is None:  # pragma: no cover - merged options always have an owner
                raise self._unknown(spelled, index)
            args = (optarg,) if optarg is not None else ()
            # Point at the (first) value when there is one: that is what errors are about.
            where = index + 1 if optarg is not None and self.args.pos == index + 2 else index
            if opt.nargs == 2:
                if not self.args.has_arg():
                    raise self.error(f"--{opt.name} requires two args.", index)
                args = args + (self.args.take(),)
            loaded.given.append(Given(opt.name, self.invert, args, self.args.loc(where)))
            self.invert = False
            return
        letter = owner
        inv = self.invert
        self.invert = False
        if letter in COMMANDS:
            self._command(letter, optarg, index, inv)
        elif letter in "sd":
            self._generic_once(letter, index, inv, allow_inv=True)
            addrs = self._parse_addresses(optarg, index)
            if letter == "s":
                self.src, self.src_inv = addrs, inv
            else:
                self.dst, self.dst_inv = addrs, inv
        elif letter == "p":
            self._generic_once("p", index, inv, allow_inv=True)
            text = optarg.lower()
            number = protocols.parse_protocol(text)
            if number is None:
                raise self.error(f"unknown protocol \"{text}\" specified", index + 1)
            self.proto, self.proto_text, self.proto_inv = number, text, inv
            if number == 0 and inv:
                raise self.error("rule would never match protocol", index)
            # iptables checks an extension's options against the protocol known when each
            # option is parsed: an extension loaded before -p but given no option yet sees it.
            for loaded in (*self.matches, self.target):
                if loaded is not None and not loaded.given:
                    loaded.ctx.proto, loaded.ctx.proto_inv = number, inv
                    loaded.ctx.proto_given = True
        elif letter in "io":
            self._generic_once(letter, index, inv, allow_inv=True)
            if len(optarg) + 1 > IFNAMSIZ:
                raise self.error(f"interface name `{optarg}' must be shorter than IFNAMSIZ "
                                 f"({IFNAMSIZ - 1})", index + 1)
            if letter == "i":
                self.in_iface, self.in_inv = optarg, inv
            else:
                self.out_iface, self.out_inv = optarg, inv
        elif letter == "f":
            if self.family is Family.IPV6:
                raise self.error("-f is not supported by ip6tables", index)
            self._generic_once("f", index, inv, allow_inv=True)
            self.fragment = not inv
        elif letter in "jg":
            self._generic_once("j", index, inv, allow_inv=False, what="-j")
            self._jump(optarg, index, goto=letter == "g")
        elif letter == "m":
            if inv:
                raise self.error("unexpected ! flag before --match", index)
            spec = MATCHES.get(optarg)
            if spec is None:
                if optarg in _KNOWN_UNSUPPORTED_MATCHES:
                    raise self.error(f"match \"{optarg}\" is not supported by nfemu yet", index + 1)
                raise self.error(f"Couldn't load match `{optarg}':No such file or directory",
                                 index + 1)
            if self.family not in spec.families:
                raise self.error(f"match \"{optarg}\" does not exist for this family", index + 1)
            self._load_match(spec, index)
        elif letter == "c":
            if self.counters_prefix is not None:  # iptables-restore -c made it --set-counters
                raise self.error("multiple -c flags not allowed (the line's [packets:bytes] "
                                 "prefix already sets the counters)", index)
            self._generic_once("c", index, inv, allow_inv=False, what="-c")
            pcnt, comma, bcnt = optarg.partition(",")
            if not comma:
                if not self.args.has_arg():
                    raise self.error("-c requires packet and byte counter", index)
                bcnt = self.args.take()
            p, b = _scan_ull(pcnt), _scan_ull(bcnt)
            if p is None:
                raise self.error("-c packet counter not numeric", index)
            if b is None:
                raise self.error("-c byte counter not numeric", index)
            self.set_counters = Counters(p, b)
        elif letter == "t":
            raise self.error("The -t option cannot be used in iptables-restore.", index)
        elif letter == "6" and self.family is Family.IPV4:
            raise self.error("This is the IPv4 version of iptables: -6 is not allowed", index)
        elif letter == "4" and self.family is Family.IPV6:
            raise self.error("This is the IPv6 version of ip6tables: -4 is not allowed", index)
        elif letter in "46vwW":
            return
        else:
            raise self.error(f"option \"{spelled}\" is not allowed in iptables-restore input", index)

    def _generic_once(self, letter, index, inv, allow_inv, what=None):
        name = what or "-" + letter
        if letter in self.seen:
            raise self.error(f"multiple {name} flags not allowed", index)
        if inv and not allow_inv:
            raise self.error(f"cannot have ! before {name}", index)
        self.seen.add(letter)

    def _command(self, letter, optarg, index, inv):
        if inv:
            raise self.error("unexpected '!' flag", index)
        if self.command is not None:
            raise self.error(f"Cannot use -{letter} with -{self.command}", index)
        if letter == "M":
            raise self.error("option -M is not allowed in iptables-restore input", index)
        self.command = letter
        self.command_loc = self.args.loc(index)
        cmd = self.cmd
        cmd.op = letter
        cmd.loc = self.args.loc(index)
        cmd.chain = optarg
        args = self.args
        if letter in "DI":
            if args.has_arg():
                num_index = args.pos
                cmd.rulenum = self._rulenum(args.take(), num_index)
            elif letter == "I":
                cmd.rulenum = 1
        elif letter == "R":
            if not args.has_arg():
                raise self.error("-R requires a rule number", index)
            num_index = args.pos
            cmd.rulenum = self._rulenum(args.take(), num_index)
        elif letter in "XFZLS":
            if optarg is None and args.has_arg():
                cmd.chain = args.take()
            if letter == "Z" and cmd.chain is not None and args.has_arg():
                num_index = args.pos
                cmd.rulenum = self._rulenum(args.take(), num_index)
        elif letter == "E":
            if not args.has_arg():
                raise self.error("-E requires old-chain-name and new-chain-name", index)
            cmd.new_name = args.take()
        elif letter == "P":
            if not args.has_arg():
                raise self.error("-P requires a chain and a policy", index)
            cmd.policy = args.take()
            if self.table == "nat" and cmd.policy == "DROP":
                raise self.error(NAT_DROP, index)
        if letter == "N":
            _check_new_chain_name(optarg, self, index)
        if letter == "E":
            _check_new_chain_name(cmd.new_name, self, index)

    def _rulenum(self, text: str, index: int) -> int:
        value = parse_c_uint(text)
        if value is None or value < 1 or value > 0x7FFFFFFF:
            raise self.error(f"Invalid rule number `{text}'", index)
        return value

    def _jump(self, name: str, index: int, goto: bool) -> None:
        if not name:
            raise self.error("Invalid target name (too short)", index + 1)
        if len(name) >= XT_EXTENSION_MAXNAMELEN:
            raise self.error(f"Invalid target name `{name}' ({XT_EXTENSION_MAXNAMELEN - 1} "
                             "chars max)", index + 1)
        if name.split() != [name]:
            raise self.error(f"Invalid target name `{name}'", index + 1)
        self.jumpto = name
        self.goto = goto
        self.target_loc = self.args.loc(index + 1)
        spec = None if goto else TARGETS.get(name)
        if spec is None and not goto and name in IPT_TARGET_NAMES and name not in STANDARD_VERDICTS:
            raise self.error(f"target \"{name}\" is not supported by nfemu yet", index + 1)
        if spec is not None:
            if self.family not in spec.families:
                raise self.error(f"target \"{name}\" does not exist for this family", index + 1)
            ctx = RuleContext(self.family, self.table, self.proto, self.proto_inv,
                              self.target_loc, self.proto_text is not None)
            self.target = _Loaded(spec, ctx)
            self._merge(spec, ("t", spec.name))

    def _parse_addresses(self, text: str, index: int) -> list[Address]:
        out = []
        for part in text.split(","):
            addr = _parse_address(part, self.family)
            if addr is None:
                raise self.error(f"host/network `{part}' not found (nfemu accepts numeric "
                                 "addresses only: it never resolves names)", index + 1)
            if isinstance(addr, str):
                raise self.error(addr, index + 1)
            if addr not in out:
                out.append(addr)
        return out

    # -- the end of the line --------------------------------------------------------------
    def _finish(self) -> Command:
        cmd = self.cmd
        if self.command is None:
            raise ParseError("no command specified", Location(self.file, self.line, 1))
        if self.invert:
            raise self.error("trailing ! with nothing to negate")
        rule_cmd = cmd.op in "AIDRC"
        if cmd.op == "D" and cmd.rulenum is not None and (self.seen or self.matches or self.jumpto):
            raise self.error("-D with a rule number takes no rule specification", 0)
        if not rule_cmd:
            if self.seen - {"c"} or self.matches:
                raise self.error(f"Illegal option with this command (-{cmd.op})", 0)
            if "c" in self.seen:
                if cmd.op != "P":
                    raise self.error("Illegal option `--set-counters' with this command", 0)
                cmd.counters = self.set_counters
            return cmd
        if cmd.op == "D" and cmd.rulenum is not None:
            return cmd
        if cmd.chain in ("PREROUTING", "INPUT") and "o" in self.seen:
            raise self.error(f"Can't use -o with {cmd.chain}", 0)
        if cmd.chain in ("POSTROUTING", "OUTPUT") and "i" in self.seen:
            raise self.error(f"Can't use -i with {cmd.chain}", 0)
        for inv, addrs, letter in ((self.src_inv, self.src, "s"), (self.dst_inv, self.dst, "d")):
            if inv and any(a.mask == 0 for a in addrs):
                raise ValidationError(f"! -{letter} with a /0 mask matches nothing: iptables-nft "
                                      "refuses the rule (RULE_APPEND failed: Invalid argument)",
                                      self.args.loc(0))
        counters = self.set_counters or self.counters_prefix
        cmd.counters = counters
        built = tuple(loaded.spec.build(loaded.given, loaded.ctx) for loaded in self.matches)
        matches = merge_native(built)
        if len(matches) != len(built):
            _check_vanished_native(built, matches, self.proto, self.args.loc(0))
        target = None
        if self.target is not None:
            target = self.target.spec.build(self.target.given, self.target.ctx)
        elif self.jumpto is not None:
            if self.jumpto in STANDARD_VERDICTS and not self.goto:
                target = Verdict(self.jumpto)
            elif self.goto:
                target = Goto(self.jumpto)
            else:
                target = Jump(self.jumpto)
        if self.table == "nat" and type(target) is Verdict and target.verdict == "DROP":
            raise ParseError(NAT_DROP, self.target_loc)
        srcs = self.src or [None]
        dsts = self.dst or [None]
        for s in srcs:
            for d in dsts:
                cmd.rules.append(Rule(
                    chain=cmd.chain, src=s, src_inv=self.src_inv, dst=d, dst_inv=self.dst_inv,
                    in_iface=self.in_iface, in_inv=self.in_inv, out_iface=self.out_iface,
                    out_inv=self.out_inv, proto=self.proto, proto_inv=self.proto_inv,
                    fragment=self.fragment, matches=matches, target=target,
                    counters=counters, family=self.family, line=self.line))
        return cmd


def _owner_id(owner) -> object:
    if isinstance(owner, tuple):
        return (owner[0], owner[1].name)
    return owner


def _scan_ull(text: str) -> int | None:
    """sscanf("%llu"): leading spaces, optional +, digits; the rest is ignored."""
    import re
    m = re.match(r"\s*\+?([0-9]+)", text)
    return int(m.group(1)) & 0xFFFFFFFFFFFFFFFF if m else None


def _check_new_chain_name(name: str | None, parser: "_Parser", index: int) -> None:
    if name is None:
        return
    message = chain_name_problem(name)
    if message:
        raise parser.error(message, index)


def chain_name_problem(name: str, declared: bool = False) -> str | None:
    """Why iptables refuses ``name`` for a new user chain, or None. A chain declared by a
    ``:NAME`` line only may not take a standard verdict's name (seen: ``:LOG - [0:0]`` and
    ``:DNAT - [0:0]`` load, ``-N LOG`` does not)."""
    if len(name) >= XT_EXTENSION_MAXNAMELEN:
        return f"chain name `{name}' too long (must be under {XT_EXTENSION_MAXNAMELEN} chars)"
    if name[:1] in ("-", "!") or not name:
        return f"chain name not allowed to start with `{name[:1]}'"
    if name in (("ACCEPT", "DROP", "QUEUE", "RETURN") if declared else IPT_TARGET_NAMES) \
            or (not declared and name in TARGETS):
        return "chain name may not clash with target name"
    if name.split() != [name]:
        return f"Invalid chain name `{name}'"
    return None


def _parse_address(text: str, family: Family):
    """One ``addr[/mask]`` as xtables_ipparse_any()/ip6parse_any() read it (numeric only).
    Returns an Address, an error message, or None when the address is not numeric."""
    addr_text, slash, mask_text = text.partition("/")
    if family is Family.IPV4 and mask_text.isdigit() and len(mask_text) <= 2 \
            and mask_text[0] != "0" and int(mask_text) <= 32:
        # the usual spelling, A.B.C.D/NN (a mask of one or two decimal digits)
        addr = ipv4_to_int(addr_text)
        if addr is None:
            return None
        mask = prefix_to_mask(int(mask_text), 32)
        return Address(addr & mask, mask, family)
    if family is Family.IPV4:
        addr = ipv4_to_int(addr_text)
        if addr is None:
            return None
        if not slash:
            mask = 0xFFFFFFFF
        else:
            mask = ipv4_to_int(mask_text, is_mask=True)
            if mask is None:
                bits = parse_c_uint(mask_text)
                if bits is None or bits > 32:
                    return f"invalid mask `{mask_text}' specified"
                mask = prefix_to_mask(bits, 32)
    else:
        addr = ipv6_to_int(addr_text)
        if addr is None:
            return None
        if not slash:
            mask = (1 << 128) - 1
        else:
            m6 = ipv6_to_int(mask_text) if ":" in mask_text else None
            if m6 is not None:
                mask = m6
            else:
                bits = parse_c_uint(mask_text)
                if bits is None or bits > 128:
                    return f"invalid mask `{mask_text}' specified"
                mask = prefix_to_mask(bits, 128)
    return Address(addr & mask, mask, family)


# Every target name iptables 1.8.9 (IPv4) can load: the standard verdicts and the target
# extensions it ships (libxt_*.so, libipt_*.so). A user chain may not take one of these names.
IPT_TARGET_NAMES = frozenset({
    "ACCEPT", "DROP", "QUEUE", "RETURN", "AUDIT", "CHECKSUM", "CLASSIFY", "CLUSTERIP",
    "CONNMARK", "CONNSECMARK", "CT", "DNAT", "DSCP", "ECN", "HMARK", "IDLETIMER", "LED", "LOG",
    "MARK", "MASQUERADE", "NETMAP", "NFLOG", "NFQUEUE", "NOTRACK", "RATEEST", "REDIRECT",
    "REJECT", "SECMARK", "SET", "SNAT", "SYNPROXY", "TCPMSS", "TCPOPTSTRIP", "TEE", "TOS",
    "TPROXY", "TRACE", "TTL", "ULOG",
})

# Real iptables extensions nfemu does not model yet: named so the error says so plainly.
_KNOWN_UNSUPPORTED_MATCHES = {
    "bpf", "cluster", "connbytes", "connlabel", "ipcomp", "ipvs", "ipv6header", "osf",
    "rateest", "realm", "udplite", "frag", "hbh", "dst", "rt", "mh", "eui64", "srh", "l2tp",
    "hl", "statistic6",
}


def _check_vanished_native(built, merged, proto: int, loc) -> None:
    """iptables-nft checks ``-p`` for every tcp/udp match it translates, also for one that
    stores no comparison and so disappears from the rule (``-p udp -m tcp ! --sport
    0:65535``): validation, which sees only the merged rule, would miss it."""
    for kind, number in ((Tcp, 6), (Udp, 17)):
        if proto != number and any(type(m) is kind and m.native for m in built) \
                and not any(type(m) is kind for m in merged):
            raise ValidationError(f"{kind.NAME.upper()} match requires '-p {kind.NAME}'", loc)
