import os
import shutil

import pytest
from hypothesis import HealthCheck, settings

# the suite exercises the parser, and writes nothing to the user's cache directory
# (tests/test_loadcache.py turns the cache on in its own directory)
os.environ.setdefault("NFEMU_NO_CACHE", "1")

settings.register_profile("default", deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", deadline=None, derandomize=False,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def kernel_unavailable_reason() -> str | None:
    """Why the kernel differential tests cannot run here, or None when they can."""
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    for tool in ("ip", "iptables-restore", "iptables-save"):
        if shutil.which(tool) is None:
            return f"needs {tool} (apt-get install iptables iproute2)"
    return None


@pytest.fixture(scope="session")
def kernel():
    """Skip (or, under NFEMU_REQUIRE_KERNEL=1 as in CI, fail) without a usable kernel."""
    reason = kernel_unavailable_reason()
    if reason:
        if os.environ.get("NFEMU_REQUIRE_KERNEL") == "1":
            pytest.fail(f"kernel tests required but cannot run: {reason}")
        pytest.skip(reason)
    from tests.kernel.harness import Kernel
    return Kernel()
