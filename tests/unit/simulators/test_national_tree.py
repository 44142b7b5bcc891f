"""The national tree for scale runs (issue 7 item 4): 31 provinces, ~2,800 county-level nodes, a valid config."""

from __future__ import annotations

from collections import Counter

from stdnum.cn import uscc

from sgs.config import load_config
from simulators.tree import write_national_tree


def test_national_tree_is_a_valid_config_of_every_county_level_division(tmp_path):
    federation = load_config(write_national_tree(tmp_path / "national.toml"))
    districts = federation.districts
    assert 2_700 <= len(districts) <= 3_000
    assert (
        len(Counter(node.code[:2] for node in districts)) == 31
    )  # provinces, autonomous regions, municipalities
    departments = [d for node in federation.nodes for d in node.departments]
    assert all(len(node.departments) <= 3 for node in federation.nodes)
    assert len({d.dev_token for d in departments}) == len(departments)
    assert len({d.uscc for d in departments}) == len(departments)
    assert all(uscc.is_valid(d.uscc) for d in departments)
    # the layout does not grow with the tree: the partitions are the config's, not one per node
    assert federation.partitions == 8
