# sonde record --agent puts this folder first on PYTHONPATH: in the process
# the agent records, hook greenlet switches (sonde._greenlets) once greenlet
# is imported, then run the sitecustomize this one hides, if any. Cheap: the
# preloaded agent tells that it records in $SONDE_AGENT_RECORDING (its pid),
# and ctypes is imported only with greenlet.
import os
import sys


def _sonde_boot():
    lib = os.environ.get("SONDE_AGENT_LIB", "")
    if lib and os.environ.get("SONDE_AGENT_RECORDING") == str(os.getpid()):
        try:
            from sonde import _greenlets
            _greenlets.install_at_import(lib)
        except Exception:
            pass
    here = os.path.dirname(os.path.abspath(__file__))
    rest = [p for p in sys.path if os.path.abspath(p or ".") != here]
    saved, mod = sys.path, sys.modules.pop("sitecustomize", None)
    try:
        sys.path = rest
        import importlib
        importlib.import_module("sitecustomize")
    except ImportError:
        if mod is not None:
            sys.modules["sitecustomize"] = mod
    except Exception:
        pass
    finally:
        sys.path = saved


_sonde_boot()
del _sonde_boot
