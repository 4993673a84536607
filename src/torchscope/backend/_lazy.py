"""Lazy public namespaces: a science module's names load their private file on first access."""

import importlib


def lazy_namespace(package, table):
    """``__getattr__``, ``__dir__`` and ``__all__`` for a package whose names load lazily.

    Parameters
    ----------
    package : str
        The package's ``__name__``.
    table : dict
        Public name -> private submodule (e.g. ``{"gaussian": "_linear"}``).

    Returns
    -------
    tuple
        ``(__getattr__, __dir__, __all__)`` to assign at the package's top level (PEP 562), so
        that importing the package imports none of its submodules (nor torch).
    """
    names = sorted(table)

    def __getattr__(name):
        try:
            module = table[name]
        except KeyError:
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        vars(importlib.import_module(package))[name] = value
        return value

    def __dir__():
        return sorted(set(vars(importlib.import_module(package))) | set(names))

    return __getattr__, __dir__, names
