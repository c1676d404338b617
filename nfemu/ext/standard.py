"""ACCEPT, DROP and RETURN are not extensions in the kernel (the standard target with a
verdict); nfemu builds them in ``command.py`` as ``ir.Verdict``. This module only documents
that, so the registry stays one module per name iptables knows."""
SPECS = ()
