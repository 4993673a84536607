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
    __getattr__ : callable
        ``__getattr__(name)``: imports ``table[name]``'s submodule, caches the value in the
        package's namespace and returns it; an ``AttributeError`` for a name not in ``table``.
    __dir__ : callable
        ``__dir__()``: the package's own names and the public ones, sorted.
    __all__ : list of str
        The public names (the keys of ``table``), sorted.

    Notes
    -----
    Assign the three at the package's top level (PEP 562)::

        __getattr__, __dir__, __all__ = lazy_namespace(__name__, _SUBMODULES)

    so that importing the package imports none of its submodules (nor torch).
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
