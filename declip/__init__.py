"""declip: train audio declippers from clipped recordings alone (measurement consistency +
equivariance), with supervised training as the reference."""

from declip._version import __version__
from declip.physics import Clipping, sdr, threshold_for_sdr

__all__ = ["Clipping", "__version__", "load_model", "restore", "sdr", "threshold_for_sdr"]


def restore(*args, **kwargs):
    """Restore clipped audio (arrays or files); see :func:`declip.api.restore`."""
    from declip.api import restore as _restore

    return _restore(*args, **kwargs)


def load_model(ref, device: str = "cpu"):
    """Load a declipper by zoo name, Hub repo ``ORG/NAME[@REVISION]``, model folder or ``.ckpt``;
    see :func:`declip.api.load_model`."""
    from declip.api import load_model as _load_model

    return _load_model(ref, device)
