"""What a user may pass to a training entry point, checked once, at the boundary.

Each :class:`Rule` says what values an argument accepts.  The same rule
checks a keyword argument given from Python (through
:func:`dltutorials.support.runs.entry_point`) and parses the matching flag on
the command line (:meth:`Rule.parse`, an argparse ``type``), so the two
boundaries cannot disagree.  Numbers may be Python's or numpy's
(``numpy.int64(20)`` is an integer, ``numpy.float32(0.1)`` a number);
``True`` is not an integer here.  The pieces the pages show (layers, update
rules, the loops) trust their arguments and keep only structural errors,
such as shapes that do not fit together.
"""
import argparse
import math
import numbers

import numpy

from dltutorials.support.errors import HyperparameterError


class Rule(object):
    """Values an argument accepts: an instance of ``kind`` for which ``accept`` is true.

    ``requirement`` completes the sentence "must be ..." in error messages.
    With ``each`` (what one entry must be), the argument is a non-empty
    sequence of such values (of ``length`` values, if given); with
    ``single_ok`` one value alone stands for a sequence of one.
    """

    def __init__(self, requirement, kind, accept, each=None, single_ok=False, length=None):
        self.requirement, self.kind, self.accept = requirement, kind, accept
        self.each, self.single_ok, self.length = each, single_ok, length
        #: What one value must be (for a sequence rule, one of its entries).
        self.element = each or requirement

    def _accepts_one(self, value):
        return (isinstance(value, self.kind) and not isinstance(value, bool)
                and math.isfinite(value) and self.accept(value))

    def check(self, name, value):
        """``value`` (a list for sequences); HyperparameterError naming ``name`` if refused."""
        if not self.each:
            if self._accepts_one(value):
                return value
        elif self.single_ok and self._accepts_one(value):
            return [value]
        # A list, a tuple or a 1-d array (a numpy scalar has no length).
        elif isinstance(value, (list, tuple)) or getattr(value, 'ndim', None) == 1:
            values = list(value)
            if (values and len(values) == (self.length or len(values))
                    and all(self._accepts_one(v) for v in values)):
                return values
        raise HyperparameterError('%s must be %s, got %r' % (name, self.requirement, value))

    def parse(self, text):
        """An argparse ``type``: one value of the rule read from the command line."""
        convert = int if self.kind is numbers.Integral else float
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError('%r is not %s' % (text, self.element)) from None
        if not self._accepts_one(value):
            raise argparse.ArgumentTypeError('must be %s, got %s' % (self.element, text))
        return value


positive = Rule('a positive number', numbers.Real, lambda v: v > 0)
non_negative = Rule('a number >= 0', numbers.Real, lambda v: v >= 0)
positive_int = Rule('a positive integer', numbers.Integral, lambda v: v > 0)
non_negative_int = Rule('an integer >= 0', numbers.Integral, lambda v: v >= 0)
fraction = Rule('a fraction in [0, 1)', numbers.Real, lambda v: 0 <= v < 1)
seed = Rule('an integer in [0, 2**32)', numbers.Integral, lambda v: 0 <= v < 2 ** 32)
#: Hidden layer sizes: a non-empty sequence of positive integers.
sizes = Rule('a non-empty list of positive integers', numbers.Integral, lambda v: v > 0,
             each='a positive integer')
#: One hidden layer size, or a list of them (the MLP's ``n_hidden``).
size_or_sizes = Rule('a positive integer or a non-empty list of positive integers',
                     numbers.Integral, lambda v: v > 0, each='a positive integer',
                     single_ok=True)
#: LeNet's numbers of filters.
two_sizes = Rule('two positive integers', numbers.Integral, lambda v: v > 0,
                 each='a positive integer', length=2)
fractions = Rule('a non-empty list of fractions in [0, 1)', numbers.Real,
                 lambda v: 0 <= v < 1, each='a fraction in [0, 1)')
#: A number of steps, or -1 for once per epoch (the original lstm.py's ``validFreq``).
steps_or_epoch = Rule('a positive integer, or -1 for once per epoch', numbers.Integral,
                      lambda v: v > 0 or v == -1)
#: A number of examples, or -1 for all (the original lstm.py's ``test_size``).
count_or_all = Rule('a positive integer, or -1 for all', numbers.Integral,
                    lambda v: v > 0 or v == -1)


class Choice(Rule):
    """A name among ``choices`` (with ``each``: a non-empty list of them, or one alone)."""

    def __init__(self, choices, each=False):
        self.choices = list(choices)
        one = 'one of %s' % ', '.join(self.choices)
        super().__init__('a list of names, each ' + one if each else one, str,
                         lambda value: value in self.choices, each=one if each else None,
                         single_ok=each)

    def _accepts_one(self, value):
        return isinstance(value, str) and value in self.choices

    def parse(self, text):
        if text not in self.choices:
            raise argparse.ArgumentTypeError('must be %s, got %s' % (self.element, text))
        return text


class NamedFunction(Choice):
    """One of the ``functions`` (a dict name: function), given as itself or by its name.

    Checked, it becomes the name (a run's identity is JSON).
    """

    def __init__(self, functions):
        self.functions = dict(functions)
        super().__init__(self.functions)

    def check(self, name, value):
        for known, function in self.functions.items():
            if value is function:
                return known
        return super().check(name, value)


class Switch(Rule):
    """True or False (numpy's booleans too; not 0 or 1): a command-line flag without a value."""

    def __init__(self):
        super().__init__('True or False', bool, lambda value: True)

    def _accepts_one(self, value):
        return isinstance(value, (bool, numpy.bool_))

    def check(self, name, value):
        return bool(super().check(name, value))


switch = Switch()


def check_same_length(**sequences):
    """HyperparameterError unless the named sequences have equal lengths."""
    lengths = {name: len(value) for name, value in sequences.items()}
    if len(set(lengths.values())) > 1:
        raise HyperparameterError('%s must have the same length, got %s' % (
            ' and '.join(lengths), ' and '.join(str(n) for n in lengths.values())))
