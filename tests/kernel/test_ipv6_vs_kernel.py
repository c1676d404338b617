from pathlib import Path

import nfemu
from nfemu.ir import Family
from tests.kernel.harness import Kernel

IP6 = Path(__file__).resolve().parents[2] / "corpus" / "ip6"


def test_ip6_corpus_matches_kernel(kernel):
    k6 = Kernel("ip6tables-restore", "ip6tables-save")
    for rules in sorted(IP6.glob("*.rules")):
        text = rules.read_text()
        real = k6.restore(text)
        assert real.accepted, real.stderr
        assert real.saved == rules.with_suffix(".nft.save").read_text()
        assert nfemu.loads(text, family=Family.IPV6).save(header=False) == real.saved
