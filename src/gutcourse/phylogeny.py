"""A tree for the course's genera, built from their taxonomy, for phylogenetic diversity metrics.

Faith's PD and UniFrac need a rooted tree with branch lengths whose tips are the taxa of
the count table. The course's count table has genera, not sequences, and nothing can be
aligned offline, so :func:`genus_tree` builds the tree from ``genus_taxonomy`` instead:
Bacteria > phylum > class > order > family > genus.

What the tree approximates
--------------------------
It is a crude stand-in for a sequence-based phylogeny (the usual route is an alignment of
16S sequences and a tree inferred from it, such as QIIME 2's mafft > mask > FastTree >
midpoint root). Its branch lengths are a **design choice**, not a measurement: every branch
spans one taxonomic rank and has length 1 (:data:`BRANCH_LENGTH`). So on this tree

- Faith's PD of a sample is the number of distinct phyla, classes, orders, families and
  genera it contains: it counts distinct taxa at five ranks, not evolutionary time;
- unweighted UniFrac is the share of those taxa found in one sample but not in the other;
- two genera of one family are exactly as far apart as any other two such genera, which no
  real phylogeny implies.

Read results on it as "taxonomy-aware richness and turnover", and do not compare their
values with PD or UniFrac values computed on a sequence tree.

This module only builds the tree. It computes no diversity value.
"""

from __future__ import annotations

import pandas as pd
from skbio import TreeNode

__all__ = ["BRANCH_LENGTH", "RANKS", "ROOT_STEM_LENGTH", "genus_tree"]

#: The ranks of ``genus_taxonomy``, from the root towards the tips.
RANKS = ("phylum", "class", "order", "family", "genus")
#: Length of every branch between two ranks: one per rank (a design choice, not a distance).
BRANCH_LENGTH = 1.0
#: Length of the branch from the root to the domain Bacteria (see :func:`genus_tree`).
ROOT_STEM_LENGTH = 0.0
# Greengenes-style prefixes keep names unique across ranks (the phylum and the class
# Actinobacteria share a name). Tips keep the bare genus name, as in the count table.
_PREFIX = {"domain": "d__", "phylum": "p__", "class": "c__", "order": "o__", "family": "f__"}


def _validated(taxonomy: pd.DataFrame) -> pd.DataFrame:
    """The five rank columns of ``taxonomy`` as stripped strings, or a ValueError saying what is wrong."""
    if not isinstance(taxonomy, pd.DataFrame):
        raise TypeError(f"`taxonomy` must be a pandas DataFrame, not {type(taxonomy).__name__}")
    missing = [rank for rank in RANKS if rank not in taxonomy.columns]
    if missing:
        raise ValueError(f"`taxonomy` lacks the column(s) {missing}; expected {list(RANKS)}")
    table = taxonomy.loc[:, list(RANKS)]
    if table.empty:
        raise ValueError("`taxonomy` has no rows")
    if table.isna().any().any():
        column = table.columns[table.isna().any()][0]
        raise ValueError(f"`taxonomy` has a missing value in column {column!r}")
    table = table.astype(str).apply(lambda column: column.str.strip())
    empty = (table == "").any()
    if empty.any():
        raise ValueError(f"`taxonomy` has an empty name in column {table.columns[empty][0]!r}")
    duplicated = table["genus"][table["genus"].duplicated()]
    if not duplicated.empty:
        raise ValueError(f"`taxonomy` lists the genus {duplicated.iloc[0]!r} more than once")
    for child, parent in zip(RANKS[1:], RANKS[:-1]):
        parents = table.groupby(child)[parent].nunique()
        if (parents > 1).any():
            name = parents.index[parents > 1][0]
            raise ValueError(f"`taxonomy` places the {child} {name!r} in more than one {parent}")
    return table


def genus_tree(taxonomy: pd.DataFrame | None = None) -> TreeNode:
    """A rooted tree of the course's genera, derived from their taxonomy, with one unit of length per rank.

    The tree is root > Bacteria > phylum > class > order > family > genus. Every branch
    below Bacteria has length :data:`BRANCH_LENGTH` (1), so each genus is 5 from the root.
    Internal nodes are named with Greengenes-style prefixes (``p__Firmicutes``,
    ``c__Clostridia``, ...); tips carry the bare genus names, the column names of
    ``mecfs_genus_counts``, so a count table's columns can be passed as ``taxa`` to
    scikit-bio.

    The branch from the root to Bacteria has length 0 (:data:`ROOT_STEM_LENGTH`). It exists
    because scikit-bio treats a root with more than two children as the newick convention
    for an unrooted tree and refuses it for Faith's PD and UniFrac; with length 0 it adds
    nothing to any value.

    This tree approximates a phylogeny by taxonomy, and its branch lengths are a design
    choice: Faith's PD on it is the number of distinct taxa at five ranks, not an amount of
    evolutionary change (see the module docstring).

    Parameters
    ----------
    taxonomy : pandas.DataFrame, optional
        One row per genus with the columns ``genus``, ``family``, ``order``, ``class`` and
        ``phylum``. Defaults to the course dataset ``genus_taxonomy``.

    Returns
    -------
    skbio.TreeNode
        The root of the tree. Genera appear in the order of ``taxonomy``'s rows.

    Raises
    ------
    ValueError
        When a rank column is missing or empty, a genus is listed twice, or a taxon is
        placed under two different parents.

    Examples
    --------
    >>> from gutcourse.phylogeny import genus_tree
    >>> tree = genus_tree()
    >>> tree.count(tips=True)
    75
    >>> tree.find("Faecalibacterium").ancestors()[0].name
    'f__Ruminococcaceae'
    """
    if taxonomy is None:
        from gutcourse import data

        taxonomy = data.load("genus_taxonomy")
    table = _validated(taxonomy)
    root = TreeNode(name="root")
    domain = TreeNode(name=f"{_PREFIX['domain']}Bacteria", length=ROOT_STEM_LENGTH)
    root.append(domain)
    nodes: dict[tuple[str, str], TreeNode] = {}
    for row in table.itertuples(index=False):
        parent = domain
        for rank, name in zip(RANKS[:-1], row[:-1]):
            key = (rank, name)
            if key not in nodes:
                nodes[key] = TreeNode(name=f"{_PREFIX[rank]}{name}", length=BRANCH_LENGTH)
                parent.append(nodes[key])
            parent = nodes[key]
        parent.append(TreeNode(name=row[-1], length=BRANCH_LENGTH))
    return root
