"""Tests of `gutcourse.phylogeny.genus_tree`: the taxonomy-derived tree used for Faith's PD and UniFrac.

Hand-checkable values use the toy table of problem set 3 (samples S1, S2, S3 over five genera):
on a tree with one unit of length per rank, Faith's PD is the number of distinct phyla,
classes, orders, families and genera a sample contains.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
import pytest
from skbio.diversity import alpha_diversity, beta_diversity
from skbio.diversity.alpha import faith_pd
from skbio.diversity.beta import unweighted_unifrac, weighted_unifrac

from gutcourse import data, phylogeny
from gutcourse.phylogeny import BRANCH_LENGTH, RANKS, genus_tree

TOY = pd.DataFrame(
    {"Bacteroides": [4, 0, 8], "Prevotella": [0, 8, 0], "Faecalibacterium": [3, 0, 6],
     "Roseburia": [2, 0, 4], "Escherichia": [6, 5, 12]},
    index=pd.Index(["S1", "S2", "S3"], name="sample_id"),
)


@pytest.fixture(scope="module")
def tree():
    return genus_tree()


@pytest.fixture(scope="module")
def counts():
    return data.load("mecfs_genus_counts")


@pytest.fixture(scope="module")
def taxonomy():
    return data.load("genus_taxonomy")


def test_every_genus_of_the_counts_table_is_a_tip_exactly_once(tree, counts):
    tips = Counter(tip.name for tip in tree.tips())
    assert set(tips) == set(counts.columns)
    assert set(tips.values()) == {1}


def test_tree_is_rooted_as_scikit_bio_requires(tree):
    # scikit-bio reads a root with more than two children as an unrooted newick tree.
    assert tree.is_root()
    assert [child.name for child in tree.children] == ["d__Bacteria"]
    assert tree.children[0].length == 0.0
    assert all(node.length is not None for node in tree.non_tips(include_self=False))
    assert all(tip.length == BRANCH_LENGTH for tip in tree.tips())


def test_bifurcation_is_not_required(tree):
    widest = max(len(node.children) for node in tree.non_tips(include_self=True))
    assert widest > 2
    assert len(tree.find("d__Bacteria").children) == 6  # the six phyla


def test_every_genus_is_five_ranks_from_the_root(tree):
    depths = {tip.name: tip.distance(tree) for tip in tree.tips()}
    assert set(depths.values()) == {len(RANKS) * BRANCH_LENGTH}


def test_internal_names_keep_ranks_apart(tree):
    # The phylum and the class Actinobacteria share a name; prefixes keep them distinct nodes.
    phylum = tree.find("p__Actinobacteria")
    assert phylum.find("c__Actinobacteria").parent is phylum
    assert tree.find("Bifidobacterium").ancestors()[:4] == [
        tree.find("f__Bifidobacteriaceae"), tree.find("o__Bifidobacteriales"),
        tree.find("c__Actinobacteria"), phylum]


def test_tree_follows_the_taxonomy_table(tree, taxonomy):
    for row in taxonomy.itertuples(index=False):
        lineage = [node.name for node in tree.find(row.genus).ancestors()[:4]]
        assert lineage == [f"f__{row.family}", f"o__{row.order}", f"c__{row[3]}", f"p__{row.phylum}"]


def test_tree_is_the_same_on_every_call(tree):
    assert str(genus_tree()) == str(tree)


def test_faith_pd_by_hand_on_the_toy_table(tree):
    # S1: 3 phyla + 3 classes + 3 orders + 4 families + 4 genera; S2: 2 of each.
    values = alpha_diversity("faith_pd", TOY, taxa=TOY.columns, tree=tree)
    assert list(values.index) == ["S1", "S2", "S3"]
    assert np.allclose(values, [17, 10, 17])
    assert faith_pd(TOY.loc["S2"].to_numpy(), list(TOY.columns), tree) == pytest.approx(10)


def test_faith_pd_counts_distinct_taxa_at_five_ranks_on_the_cohort(tree, counts, taxonomy):
    values = alpha_diversity("faith_pd", counts, taxa=counts.columns, tree=tree)
    lineage = taxonomy.set_index("genus")
    expected = [len(present := row.index[row > 0])
                + sum(lineage.loc[present, rank].nunique() for rank in RANKS[:-1])
                for _, row in counts.iterrows()]
    assert list(values.index) == list(counts.index)
    assert np.allclose(values, expected)


def test_unweighted_unifrac_by_hand_on_the_toy_table(tree):
    # S1 and S2 share 8 of the 19 unit branches either one reaches (Bacteroidetes to order
    # level, and the whole Escherichia lineage): 11 / 19 of the branches are unique.
    dm = beta_diversity("unweighted_unifrac", TOY, taxa=TOY.columns, tree=tree)
    assert list(dm.ids) == ["S1", "S2", "S3"]
    assert dm["S1", "S2"] == pytest.approx(11 / 19)
    assert dm["S1", "S3"] == pytest.approx(0.0)
    assert unweighted_unifrac(TOY.loc["S1"], TOY.loc["S2"], list(TOY.columns), tree) == pytest.approx(11 / 19)


def test_weighted_unifrac_ignores_depth_and_runs_normalised(tree):
    # S3 is S1 sequenced twice as deep: the same proportions, so distance 0.
    assert weighted_unifrac(TOY.loc["S1"], TOY.loc["S3"], list(TOY.columns), tree) == pytest.approx(0.0)
    normalised = weighted_unifrac(TOY.loc["S1"], TOY.loc["S2"], list(TOY.columns), tree, normalized=True)
    assert 0 < normalised <= 1


def test_unifrac_runs_on_the_cohort(tree, counts):
    unweighted = beta_diversity("unweighted_unifrac", counts, taxa=counts.columns, tree=tree)
    weighted = beta_diversity("weighted_unifrac", counts, taxa=counts.columns, tree=tree)
    for dm in (unweighted, weighted):
        assert list(dm.ids) == list(counts.index)
        assert np.allclose(dm.data, dm.data.T)
        assert np.all(np.diag(dm.data) == 0)
    assert unweighted.data.min() >= 0 and unweighted.data.max() <= 1
    assert weighted.data.max() > 0


def test_a_small_taxonomy_of_ones_own():
    small = pd.DataFrame({"genus": ["A", "B", "C"], "family": ["F1", "F1", "F2"], "order": ["O", "O", "O"],
                          "class": ["C", "C", "C"], "phylum": ["P", "P", "P"]})
    tree = genus_tree(small)
    assert sorted(tip.name for tip in tree.tips()) == ["A", "B", "C"]
    # A and B share their family, C only the order: PD of {A, C} is 2 + 2 branches + order, class, phylum.
    assert faith_pd([1, 0, 1], ["A", "B", "C"], tree) == pytest.approx(7)
    assert faith_pd([1, 1, 0], ["A", "B", "C"], tree) == pytest.approx(6)


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.drop(columns="order"), "lacks the column"),
    (lambda t: pd.concat([t, t.iloc[[0]]]), "more than once"),
    (lambda t: t.assign(family=t["family"].where(t.index != 0, None)), "missing value in column 'family'"),
    (lambda t: t.assign(genus=t["genus"].where(t.index != 0, "  ")), "empty name in column 'genus'"),
    (lambda t: t.assign(family=t["family"].where(t["genus"] != "Prevotella", "Lachnospiraceae")),
     "places the family 'Lachnospiraceae' in more than one order"),
    (lambda t: t.iloc[0:0], "no rows"),
])
def test_bad_taxonomies_are_refused_with_a_reason(taxonomy, edit, message):
    with pytest.raises(ValueError, match=message):
        genus_tree(edit(taxonomy))


def test_a_taxonomy_must_be_a_table():
    with pytest.raises(TypeError, match="pandas DataFrame"):
        genus_tree([("A", "F", "O", "C", "P")])


def test_the_module_only_builds_the_tree():
    assert set(phylogeny.__all__) == {"BRANCH_LENGTH", "RANKS", "ROOT_STEM_LENGTH", "genus_tree"}
