"""The fixture builder runs in mace-torch's environment only: pytest must never import it (its
doctest collection would, and this environment never imports mace-torch)."""

collect_ignore = ["make_mace_torch_fixtures.py"]
