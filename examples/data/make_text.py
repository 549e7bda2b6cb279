"""Writes tensors.txt, the training text of examples/char_lm.py, deterministically.

The text is original English prose written for this repository (no third-party text, so no licence
question): twelve short paragraphs about tensors, kernels and compilers below. They are about 8 KB;
the file is grown to about 30 KB by repetition with variation: later passes shuffle the paragraphs'
order and the order of sentences inside each paragraph with a fixed seed, so the model sees the same
vocabulary and style in new arrangements. Run ``python examples/data/make_text.py`` to regenerate;
the output is byte-for-byte the same every time.
"""
from __future__ import annotations

import os
import random
import re

PARAGRAPHS = [
    """A tensor is a box of numbers with a shape. The shape says how many numbers lie along each axis, and \
the strides say how far apart they sit in memory. Two tensors can share the same memory and still look \
different, because a view changes the shape and the strides without copying a single number. This is \
why a transpose is free and a reshape is usually free, while a copy costs time in proportion to its size.""",
    """A kernel is a small program that walks over the numbers of one or more tensors and writes a result. \
The simplest kernels are elementwise: they read one number from each input at the same position and \
write one number to the output. Addition, multiplication and the exponential are all kernels of this \
kind. A reduction is different, because it folds many numbers into one, and the order in which it adds \
them changes the last bits of the answer.""",
    """A compiler turns a description of work into instructions a machine can run. A good compiler for \
tensors looks at several kernels in a row and asks whether they can be fused into one. If the first \
kernel writes a large array only for the second kernel to read it back, fusing the two saves a trip to \
memory, and memory is slow compared with arithmetic. Most of the speed of a modern tensor library comes \
from moving fewer bytes, not from doing fewer sums.""",
    """Automatic differentiation records what was done to each tensor so that the gradient can be \
computed later. Every operation leaves a small note behind: which inputs it read, which values it \
needs to remember, and how to turn the gradient of its output into gradients of its inputs. When the \
loss is finally known, the notes are read in reverse order, and each one passes its share of the \
gradient backward until every parameter has received its own.""",
    """Training a model is a loop that repeats a few plain steps. Take a batch of examples, run the model \
forward to get predictions, measure how wrong the predictions are, run the gradient backward, and \
move every parameter a little in the direction that makes the error smaller. The step size is called \
the learning rate. If it is too small, the loss falls slowly; if it is too large, the loss jumps \
about and may never settle.""",
    """A tracer watches a program run and writes down the operations it sees. The record is a graph: each \
node is an operation, and each edge carries a tensor from the node that made it to the nodes that use \
it. Once the graph exists, it can be printed, checked, simplified and handed to a compiler. The price \
of tracing is that the record only shows the path the program took on the example it was given, so a \
branch that depends on the data must be written as an explicit conditional.""",
    """Broadcasting lets a small tensor act as if it were a large one. A row of numbers can be added to \
every row of a matrix without copying it, because its stride along the missing axis is zero. The rule \
is simple: compare the shapes from the right, and two sizes agree when they are equal or when one of \
them is one. Many bugs in numerical code come from a broadcast that worked when the author did not \
expect it to.""",
    """Numbers in a computer are approximations. A float has a fixed number of bits, so most real numbers \
fall between two floats and must be rounded to one of them. Adding a tiny number to a huge one can \
lose the tiny number entirely. Careful kernels sum in pairs or keep a running correction, and careful \
tests compare results with a tolerance instead of demanding that every bit agree.""",
    """A convolution slides a small window of weights across an image and takes a weighted sum at every \
position. The same weights are used everywhere, which is why a convolutional network needs far fewer \
parameters than a dense one. One common way to compute a convolution is to copy every window into \
the row of a large matrix and then perform a single matrix product, trading memory for the speed of \
a well tuned multiplication routine.""",
    """A recurrent network reads a sequence one step at a time and carries a hidden state from each step \
to the next. The long short term memory cell adds gates that decide what to keep, what to forget and \
what to show. Because each step depends on the one before it, the steps cannot run in parallel, and \
the gradient must travel back through every one of them, which is why long sequences are cut into \
shorter windows during training.""",
    """A language model learns to guess the next symbol from the symbols before it. A character model \
works with single letters, spaces and punctuation, so its vocabulary is tiny, but it must learn \
spelling, words and grammar from nothing. At first it guesses every character equally often. After a \
few hundred steps it learns that spaces follow words and that some letters like to travel together, \
and its samples begin to look like text, even when they do not yet make sense.""",
    """Good tools explain their mistakes. When two shapes do not match, a helpful error names the \
operation, prints both shapes and says which axis disagreed. When a gradient is missing, it says \
which tensor did not require one. These messages cost little to write and save hours for the person \
who reads them, which is usually the author, six months later, on a deadline.""",
]

TARGET = 30_000


def _sentences(paragraph):
    return re.split(r"(?<=[.;]) (?=[A-Z])", paragraph)


def build(seed=1234, target=TARGET):
    rng = random.Random(seed)
    parts = list(PARAGRAPHS)                      # the first pass is the text as written
    size = sum(len(p) + 2 for p in parts)
    while size < target:                          # later passes: shuffled paragraphs and sentences
        order = list(range(len(PARAGRAPHS)))
        rng.shuffle(order)
        for i in order:
            s = _sentences(PARAGRAPHS[i])
            rng.shuffle(s)
            p = " ".join(s)
            parts.append(p)
            size += len(p) + 2
            if size >= target:
                break
    return "\n\n".join(parts) + "\n"


if __name__ == "__main__":
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tensors.txt")
    text = build()
    with open(path, "w", encoding="ascii", newline="\n") as f:
        f.write(text)
    print(f"wrote {path}: {len(text):,} characters, {len(set(text))} distinct")
