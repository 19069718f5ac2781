"""The app image: tagged by its sources, pushed to the stack's registry, referenced by digest."""
import pulumi

from components.apps.app_image import AppImage, pushed_digest
from components.nodes.registry import Registry
from tests.unit.conftest import APP_DIGEST


def test_pushed_digest_picks_the_registry_the_image_was_pushed_to():
    lines = "a/b@sha256:1\n127.0.0.1:5000/phoenix/sample-app@sha256:2\n"
    assert pushed_digest(lines, "127.0.0.1:5000/phoenix/sample-app") == "sha256:2"


def pushed_image() -> AppImage:
    return AppImage("img", {"base_image": "local/python-base:bookworm", "nodes": [],
                            "registry": Registry(push="127.0.0.1:5000", pull="172.28.0.2:5000")})


@pulumi.runtime.test
def test_nodes_pull_the_pushed_digest_from_the_registry_address_they_reach(mocks):
    image = pushed_image()

    def check(ref):
        build = mocks.of("command:local:Command")["img-build"]
        assert "--build-arg BASE_IMAGE=local/python-base:bookworm" in build["create"]
        tag = build["triggers"][0]
        assert f"docker push -q 127.0.0.1:5000/phoenix/sample-app:{tag}" in build["create"]
        assert ref == f"172.28.0.2:5000/phoenix/sample-app:{tag}@{APP_DIGEST}"
    return image.ref.apply(check)


@pulumi.runtime.test
def test_destroy_removes_the_pushed_tag_and_nothing_else(mocks):
    image = pushed_image()

    def check(_):
        build = mocks.of("command:local:Command")["img-build"]
        tag = build["triggers"][0]
        assert build["delete"].startswith(f"docker image rm 127.0.0.1:5000/phoenix/sample-app:{tag} ")
        assert "local/python-base" not in build["delete"]
    return image.ref.apply(check)
