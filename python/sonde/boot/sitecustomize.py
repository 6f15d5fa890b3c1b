# sonde record --agent puts this folder first on PYTHONPATH: in the process
# the agent records, hook greenlet switches (sonde._greenlets), then run the
# sitecustomize this one hides, if any.
import os
import sys


def _sonde_boot():
    lib = os.environ.get("SONDE_AGENT_LIB", "")
    if lib:
        try:
            import ctypes
            # only where the agent is already loaded (LD_PRELOAD) and recording
            dll = ctypes.CDLL(lib, mode=os.RTLD_NOLOAD | os.RTLD_LAZY)
            dll.sonde_agent_active.restype = ctypes.c_int
            if dll.sonde_agent_active():
                from sonde import _greenlets
                _greenlets.install(dll)
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
