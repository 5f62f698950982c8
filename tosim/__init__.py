"""tosim: the command-line front end wiring hardware_profiles, hwlib, opcount and calibrate."""
__all__ = ["main"]


def main(argv=None):
    from .cli import main as _main
    return _main(argv)
