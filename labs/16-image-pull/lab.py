"""Lab 16: serving's new pods name an image the node cannot get.

The variants vary how the reference went wrong: `:latest` with pull policy Always (the node holds
the image, but Always asks a registry first), the build's tag under the name of a registry the
node cannot reach (a move to a team registry, not yet pushed), or a release's version tag that no
build here produced. The check is the same for all: pods ready on a fixed build the kubelet can
get, and the ready pods running it.
"""

from __future__ import annotations

import subprocess

from mlops_lab.lab_engine import kube_kit as kk
from mlops_lab.lab_engine.kit import Condition, LabContext, variant_of
from mlops_lab.lab_engine.progress import LabProgress
from mlops_lab.runtime.selection import RuntimeName

LATEST = "mlops-lab-platform:latest"
# The team registry serving's image was renamed for (variant 2): no such host answers.
REGISTRY = "registry.mlops-lab.internal:5000"
# A release's version (variant 3): no build here is tagged with it.
RELEASE = "v1.4.0"
# What the new reference is (`change`), and what the kubelet then does (`cause`, for the debrief).
VARIANTS = (
    {
        "change": "latest",
        "cause": "a `:latest` tag with pull policy Always: the kubelet asks a registry before it "
        "looks at what the node holds",
    },
    {
        "change": "registry",
        "cause": f"the build's tag under the name of a registry the node cannot reach "
        f"({REGISTRY}): the node holds the image under its local name only",
    },
    {
        "change": "release",
        "cause": f"a release's version tag ({RELEASE}) that no build here produced: the node "
        "holds no such image, so the kubelet tries a registry",
    },
)
PULL_FAILURES = {"ErrImagePull", "ImagePullBackOff"}


def _container_patch(image: str, policy: str) -> dict:
    return {
        "spec": {
            "template": {
                "spec": {
                    "containers": [{"name": kk.SERVING, "image": image, "imagePullPolicy": policy}]
                }
            }
        }
    }


def _load_latest(ctx: LabContext, image: str) -> None:
    """Put the image on the node under :latest too, as the teammate did: it does not help.
    On kind that takes `kind load`; a cluster whose node runs on this machine's Docker engine
    (the kube runtime, e.g. CI's single-node cluster) sees the tag as soon as it exists."""
    subprocess.run(["docker", "tag", image, LATEST], check=False, capture_output=True)
    if kk.cluster(ctx).name is RuntimeName.kind:
        subprocess.run(
            ["kind", "load", "docker-image", "--name", "mlops-lab", LATEST],
            check=False,
            capture_output=True,
        )


def broken_reference(variant: dict, image: str) -> tuple[str, str]:
    """The image and pull policy the variant's change gives serving (``image``: the build's)."""
    name, _, tag = image.rpartition(":")
    if variant["change"] == "latest":
        return LATEST, "Always"
    if variant["change"] == "registry":
        return f"{REGISTRY}/{name.rsplit('/', 1)[-1]}:{tag}", "IfNotPresent"
    return f"{name}:{RELEASE}", "IfNotPresent"


def start(ctx: LabContext, variant: dict) -> dict:
    container = kk.container(kk.deployment(ctx))
    image, policy = container["image"], container.get("imagePullPolicy", "IfNotPresent")
    if variant["change"] == "latest":
        _load_latest(ctx, image)
    kk.kubectl(ctx).patch(
        "deployment", kk.SERVING, _container_patch(*broken_reference(variant, image))
    )
    ctx.say(
        "[bold]Lab 16.[/] Teammate: \"I changed serving's image and made sure the cluster has it, "
        'but the new serving pod has been stuck for ten minutes saying it cannot get it."'
    )
    return {"image": image, "policy": policy}


def check(ctx: LabContext, progress: LabProgress) -> list[Condition]:
    deploy = kk.deployment(ctx)
    done, description = kk.rolled_out(deploy)
    container = kk.container(deploy)
    image, policy = container["image"], container.get("imagePullPolicy", "")
    pods = kk.pods(ctx)
    stuck = [r for r in kk.waiting_reasons(pods) if r in PULL_FAILURES]
    ready = [p for p in pods if kk.is_ready(p)]
    running_images = {s["image"].rsplit("/", 1)[-1] for p in ready for s in kk.statuses(p)}
    return [
        Condition.of(
            "serving's pods run and are ready",
            done and bool(ready) and not stuck,
            f"Deployment serving: {description}",
            f"Deployment serving: {description}"
            + (f"; pods waiting on their image: {', '.join(stuck)}" if stuck else ""),
        ),
        Condition.of(
            "serving uses a fixed build from a source it can reach",
            pinned(image, policy),
            f"{image}, pull policy {policy}",
            f"{image} with pull policy {policy or 'default'}: a moving tag, or a policy that "
            "asks a registry on every start where there is none",
        ),
        Condition.of(
            "the ready pods run that build",
            bool(ready) and running_images <= {image.rsplit("/", 1)[-1]},
            f"ready pods run {image}",
            f"ready pods run {', '.join(sorted(running_images)) or 'nothing'}",
        ),
        kk.serving_answers(ctx, bool(ready)),
    ]


def pinned(image: str, policy: str) -> bool:
    """A fixed build (a tag other than latest, or a digest) that the kubelet can get: the node's
    copy (IfNotPresent, Never), or a registry the image names (a host with a dot or a port, e.g.
    localhost:5001/serving:1a2b), which Always then asks on every start, as it should."""
    name = image.rsplit("/", 1)[-1]
    fixed = "@sha256:" in image or (":" in name and name.rpartition(":")[2] != "latest")
    first = image.split("/", 1)[0]
    registry = "/" in image and ("." in first or ":" in first or first == "localhost")
    return fixed and (policy in ("IfNotPresent", "Never") or (policy == "Always" and registry))


def hints(ctx: LabContext, progress: LabProgress) -> list[str]:
    variant = variant_of(VARIANTS, progress.state)
    reasons = ", ".join(sorted(set(kk.waiting_reasons(kk.pods(ctx))))) or "none now"
    second = {
        "latest": "The node holds the image (`docker exec mlops-lab-control-plane crictl "
        "images`), yet the kubelet goes to a registry. Which field decides whether it asks one?",
        "registry": "Compare the image the pod asks for with the names the node holds "
        "(`docker exec mlops-lab-control-plane crictl images`): the whole name, host included.",
        "release": "Compare the image the pod asks for with the tags the node holds "
        "(`docker exec mlops-lab-control-plane crictl images`) and the build's own tags "
        "(build/image-tags.json).",
    }[variant["change"]]
    return [
        f"The serving pods are waiting ({reasons}). `kubectl -n mlops-lab describe pod` on the "
        "newest one: what does the kubelet try to do, and where?",
        second,
        "Look at image and pull policy: `kubectl -n mlops-lab get deploy serving -o jsonpath="
        "'{.spec.template.spec.containers[0].image} {.spec.template.spec.containers[0]"
        ".imagePullPolicy}'`. What do the other Deployments use? (build/image-tags.json)",
        "`kubectl -n mlops-lab rollout undo deploy/serving`, or set the build's tag with `kubectl "
        "-n mlops-lab set image deploy/serving serving=<tag from build/image-tags.json>` (and the "
        "policy IfNotPresent with `kubectl patch` if it is not).",
    ]


def solve(ctx: LabContext, progress: LabProgress) -> None:
    patch = _container_patch(progress.state["image"], progress.state["policy"])
    kk.kubectl(ctx).patch("deployment", kk.SERVING, patch)
    ctx.wait_until(lambda: kk.rolled_out(kk.deployment(ctx))[0], 600, "serving to roll out")


def reset(ctx: LabContext, progress: LabProgress) -> None:
    if "image" in progress.state:
        kk.kubectl(ctx).patch(
            "deployment",
            kk.SERVING,
            _container_patch(progress.state["image"], progress.state["policy"]),
        )
