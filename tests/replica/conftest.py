from relay_fixture import relay

__all__ = ["relay"]
