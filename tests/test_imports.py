"""The public API and the star-import module."""

import hypergen.imports as hypergen_imports

import hypergen_consumers
import hypergen_consumers.imports as everything


def test_public_names_are_listed_and_importable():
    for name in hypergen_consumers.__all__:
        assert getattr(hypergen_consumers, name) is not None, name
    assert {
        "HypergenConsumer",
        "handler",
        "consumer",
        "autoconsumers",
        "group_send",
        "agroup_send",
        "consumer_command",
        "aconsumer_command",
        "NO_PERM_REQUIRED",
    } <= set(hypergen_consumers.__all__)


def test_star_import_gives_hypergen_and_this_package_with_ours_winning():
    namespace = {}
    exec("from hypergen_consumers.imports import *", namespace)
    hypergen_names = {name for name in vars(hypergen_imports) if not name.startswith("_")}
    assert hypergen_names | set(hypergen_consumers.__all__) <= set(namespace)
    assert namespace["liveview"] is hypergen_imports.liveview
    assert namespace["group_send"] is hypergen_consumers.group_send  # Not hypergen.websocket's.
    assert set(everything.__all__) == hypergen_names | set(hypergen_consumers.__all__)
