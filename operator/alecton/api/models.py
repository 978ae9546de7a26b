"""Typed views of the alecton custom resources.

The API server has already validated bodies against the CRD schemas; parsing here
turns the dicts into frozen dataclasses the pure reconcile code works on, and
raises `InvalidResourceError` (with a message a person can act on) for anything the
schema could not express or that slipped past an older CRD.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from alecton.api.durations import parse_duration
from alecton.api.identities import Identity, parse_identities
from alecton.api.ignore import IgnoreRule, parse_rules

GROUP = "alecton.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
FINALIZER = f"{GROUP}/helm-release"

PLURALS = {
    "Image": "images",
    "Application": "applications",
    "Cluster": "clusters",
    "Deployment": "deployments",
    "Promotion": "promotions",
    "ReleaseRecord": "releaserecords",
    "Freeze": "freezes",
    "ClusterFreeze": "clusterfreezes",
    "Notifier": "notifiers",
    "ClusterNotifier": "clusternotifiers",
}
# Kinds without a namespace: the client addresses them with namespace "".
CLUSTER_SCOPED = frozenset({"ClusterFreeze", "ClusterNotifier"})

DEFAULT_KUBECONFIG_KEY = "kubeconfig"
# The ServiceAccount of a tenant namespace that helm impersonates on the operator's own cluster.
DEFAULT_SERVICE_ACCOUNT = "alecton-deployer"
# Helm release labels (stored on helm's own storage Secrets) that say which Deployment owns it.
OWNER_NAMESPACE_LABEL = f"{GROUP}/owner-namespace"
OWNER_NAME_LABEL = f"{GROUP}/owner-name"
DEFAULT_IMAGE_REF_PATH = "image"


class InvalidResourceError(ValueError):
    """A resource body that cannot be used as it is."""


def _spec(body: dict[str, Any]) -> dict[str, Any]:
    spec = body.get("spec")
    if not isinstance(spec, dict):
        raise InvalidResourceError("spec is missing or not an object")
    return spec


def _str(spec: dict[str, Any], key: str, required: bool = True) -> str:
    value = spec.get(key)
    if value is None or value == "":
        if required:
            raise InvalidResourceError(f"spec.{key} is required")
        return ""
    if not isinstance(value, str):
        raise InvalidResourceError(f"spec.{key} must be a string, not {type(value).__name__}")
    return value


def _secret_name(raw: Any, where: str) -> str:
    """`{name: ...}` of a Secret in the object's own namespace; "" when absent."""
    if raw is None:
        return ""
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str) or not raw["name"]:
        raise InvalidResourceError(f"{where} must be an object with a name")
    return str(raw["name"])


def _list(raw: Any, where: str) -> tuple[Any, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise InvalidResourceError(f"{where} must be a list")
    return tuple(raw)


def _values(raw: Any, where: str) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise InvalidResourceError(f"{where} must be an object (a map of chart values)")
    return raw


@dataclass(frozen=True)
class ObjectRef:
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


def _ref(body: dict[str, Any]) -> ObjectRef:
    meta = body.get("metadata") or {}
    return ObjectRef(namespace=meta.get("namespace", ""), name=meta.get("name", ""))


@dataclass(frozen=True)
class ImageSource:
    """Where an Image's code came from (`spec.source`, set by CI; immutable with the Image)."""

    repository: str = ""  # "github.com/org/repo" or a URL
    revision: str = ""  # the commit SHA
    url: str = ""  # a link to the commit (http or https: the schema says so)
    committed_at: str = ""  # RFC 3339

    @classmethod
    def parse(cls, raw: Any) -> ImageSource | None:
        if not isinstance(raw, dict):
            return None
        found = cls(
            repository=str(raw.get("repository") or ""),
            revision=str(raw.get("revision") or ""),
            url=str(raw.get("url") or ""),
            committed_at=str(raw.get("committedAt") or ""),
        )
        return found if found.as_dict() else None

    def as_dict(self) -> dict[str, str]:
        """The CRD's camelCase form, without empty fields."""
        fields = {"repository": self.repository, "revision": self.revision, "url": self.url,
                  "committedAt": self.committed_at}  # fmt: skip
        return {key: value for key, value in fields.items() if value}


@dataclass(frozen=True)
class Image:
    ref: ObjectRef
    name: str
    version: str
    image: str
    created: str  # creationTimestamp: the oldest Image of a (name, version) pair wins
    source: ImageSource | None = None
    digest: str = ""  # sha256:... of the manifest `image` names, when recorded

    @classmethod
    def parse(cls, body: dict[str, Any]) -> Image:
        spec = _spec(body)
        return cls(
            ref=_ref(body),
            name=_str(spec, "name"),
            version=_str(spec, "version"),
            image=_str(spec, "image"),
            created=(body.get("metadata") or {}).get("creationTimestamp") or "",
            source=ImageSource.parse(spec.get("source")),
            digest=_str(spec, "digest", required=False),
        )


@dataclass(frozen=True)
class VerifyPolicy:  # spec.verify: only images signed by a key of the Secret are deployed
    secret: str
    provider: str = "cosign"
    chart: bool = False  # spec.verify.chart: the oci:// chart's signature is checked too
    # spec.verify.identities: keyless signers whose certificates chain to the Secret's roots
    identities: tuple[Identity, ...] = ()


def _verify_policy(raw: Any) -> VerifyPolicy | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or raw.get("provider", "cosign") != "cosign":
        raise InvalidResourceError("spec.verify must be an object with provider cosign (the only one)")
    chart = raw.get("chart", False)
    if not isinstance(chart, bool):
        raise InvalidResourceError("spec.verify.chart must be true or false")
    try:
        identities = parse_identities(raw.get("identities"), "spec.verify.identities")
    except ValueError as error:
        raise InvalidResourceError(str(error)) from None
    return VerifyPolicy(
        _secret_name(raw.get("secretRef"), "spec.verify.secretRef"), chart=chart, identities=identities
    )


@dataclass(frozen=True)
class ImageValues:
    """Where the image reference goes in the chart values (dotted paths)."""

    ref: str | None = DEFAULT_IMAGE_REF_PATH
    repository: str | None = None
    tag: str | None = None

    @classmethod
    def parse(cls, raw: Any) -> ImageValues:
        if not raw:
            return cls()
        if not isinstance(raw, dict):
            raise InvalidResourceError("spec.imageValues must be an object")
        repository, tag = raw.get("repository"), raw.get("tag")
        if bool(repository) != bool(tag):
            raise InvalidResourceError("spec.imageValues.repository and .tag must be set together")
        # With the split form and no explicit `ref`, only the split keys are set.
        ref = raw.get("ref") or (None if repository else DEFAULT_IMAGE_REF_PATH)
        return cls(ref=ref, repository=repository, tag=tag)


DEFAULT_HEALTH_TIMEOUT = "5m"
DEFAULT_HEALTH_TIMEOUT_SECONDS = 300.0


@dataclass(frozen=True)
class HealthSettings:
    """health / healthTimeout / onFailure as written (None: not set here, inherit)."""

    check: bool | None = None
    timeout: str | None = None
    rollback_on_failure: bool | None = None
    # `timeout` in seconds, parsed once here (the text is what people wrote and see).
    timeout_seconds: float | None = field(default=None, compare=False)

    @classmethod
    def parse(cls, raw: dict[str, Any], where: str) -> HealthSettings:
        health, on_failure = raw.get("health"), raw.get("onFailure")
        if health not in (None, "Check", "None"):
            raise InvalidResourceError(f"{where}.health must be Check or None")
        if on_failure not in (None, "None", "Rollback"):
            raise InvalidResourceError(f"{where}.onFailure must be None or Rollback")
        timeout = raw.get("healthTimeout")
        seconds = None
        if timeout:
            try:
                seconds = parse_duration(str(timeout), field=f"{where}.healthTimeout")
            except ValueError as error:
                raise InvalidResourceError(str(error)) from None
        return cls(
            check=None if health is None else health == "Check",
            timeout=str(timeout) if timeout else None,
            rollback_on_failure=None if on_failure is None else on_failure == "Rollback",
            timeout_seconds=seconds,
        )

    def over(self, base: HealthSettings) -> HealthSettings:
        """These settings, falling back to `base` where not set."""
        own_timeout = bool(self.timeout)
        return HealthSettings(
            check=base.check if self.check is None else self.check,
            timeout=self.timeout if own_timeout else base.timeout,
            rollback_on_failure=(
                base.rollback_on_failure if self.rollback_on_failure is None else self.rollback_on_failure
            ),
            timeout_seconds=self.timeout_seconds if own_timeout else base.timeout_seconds,
        )


@dataclass(frozen=True)
class HealthPolicy:
    """The effective health policy of one target."""

    check: bool = True
    timeout_text: str = DEFAULT_HEALTH_TIMEOUT
    rollback_on_failure: bool = False
    # Seconds a new revision has to become healthy: `timeout_text` as parsed once, with the
    # Application.
    timeout: float = field(default=DEFAULT_HEALTH_TIMEOUT_SECONDS, compare=False)


DEFAULT_DRIFT_INTERVAL = "10m"
MIN_DRIFT_INTERVAL_SECONDS = 30.0


@dataclass(frozen=True)
class DriftSettings:
    """spec.drift as written (None: inherit)."""

    mode: str | None = None
    interval: str | None = None
    ignore: tuple[IgnoreRule, ...] = ()

    @classmethod
    def parse(cls, raw: Any, where: str) -> DriftSettings:
        if raw is None:
            return cls()
        if not isinstance(raw, dict):
            raise InvalidResourceError(f"{where}.drift must be an object")
        mode, interval = raw.get("mode"), raw.get("interval")
        if mode not in (None, "Warn", "Correct", "Off"):
            raise InvalidResourceError(f"{where}.drift.mode must be Warn, Correct or Off")
        try:
            if interval and parse_duration(str(interval), field=f"{where}.drift.interval") < (
                MIN_DRIFT_INTERVAL_SECONDS
            ):
                raise ValueError(f"{where}.drift.interval must be at least 30s, not {interval!r}")
            ignore = parse_rules(raw.get("ignore") or [], f"{where}.drift.ignore")
        except ValueError as error:
            raise InvalidResourceError(str(error)) from None
        return cls(mode, str(interval) if interval else None, ignore)


@dataclass(frozen=True)
class DriftPolicy:
    """The effective drift policy of one target."""

    mode: str = "Warn"
    interval_text: str = DEFAULT_DRIFT_INTERVAL
    ignore: tuple[IgnoreRule, ...] = ()

    @property
    def interval(self) -> float:
        return parse_duration(self.interval_text)


@dataclass(frozen=True)
class Target:
    name: str
    cluster: str
    namespace: str
    values: dict[str, Any] = field(default_factory=dict, hash=False, compare=True)
    values_from: tuple[Any, ...] = ()  # raw valuesFrom entries, parsed where values are computed
    health: HealthSettings = HealthSettings()
    drift: DriftSettings = DriftSettings()


@dataclass(frozen=True)
class Application:
    ref: ObjectRef
    chart: str
    image: str
    repository: str = ""
    chart_version: str = ""
    repository_secret: str = ""  # spec.repositorySecretRef.name: an oci:// chart's credentials
    pin_image_digest: bool = False  # deploy `image@digest` (the Image must record a digest)
    verify: VerifyPolicy | None = None  # spec.verify: signatures checked before helm runs
    image_values: ImageValues = ImageValues()
    values: dict[str, Any] = field(default_factory=dict, hash=False)
    targets: tuple[Target, ...] = ()
    values_from: tuple[Any, ...] = ()  # raw valuesFrom entries, parsed where values are computed
    health: HealthSettings = HealthSettings()
    drift: DriftSettings = DriftSettings()

    def drift_policy(self, target: Target) -> DriftPolicy:
        """Mode and interval: the target's over the Application's; ignore rules: both."""
        own, base = target.drift, self.drift
        return DriftPolicy(
            mode=own.mode or base.mode or "Warn",
            interval_text=own.interval or base.interval or DEFAULT_DRIFT_INTERVAL,
            ignore=base.ignore + own.ignore,
        )

    def health_policy(self, target: Target) -> HealthPolicy:
        """The target's settings over the Application's over the defaults."""
        settings = target.health.over(self.health)
        return HealthPolicy(
            check=settings.check is not False,
            timeout_text=settings.timeout or DEFAULT_HEALTH_TIMEOUT,
            timeout=settings.timeout_seconds or DEFAULT_HEALTH_TIMEOUT_SECONDS,
            rollback_on_failure=bool(settings.rollback_on_failure),
        )

    @classmethod
    def parse(cls, body: dict[str, Any]) -> Application:
        spec = _spec(body)
        raw_targets = spec.get("targets") or []
        if not isinstance(raw_targets, list):
            raise InvalidResourceError("spec.targets must be a list")
        targets: list[Target] = []
        seen: set[str] = set()
        for index, raw in enumerate(raw_targets):
            where = f"spec.targets[{index}]"
            if not isinstance(raw, dict):
                raise InvalidResourceError(f"{where} must be an object")
            target = Target(
                name=_str(raw, "name"),
                cluster=_str(raw, "cluster"),
                namespace=_str(raw, "namespace"),
                values=_values(raw.get("values"), f"{where}.values"),
                values_from=_list(raw.get("valuesFrom"), f"{where}.valuesFrom"),
                health=HealthSettings.parse(raw, where),
                drift=DriftSettings.parse(raw.get("drift"), where),
            )
            if target.name in seen:
                raise InvalidResourceError(f"target name {target.name!r} is used twice")
            seen.add(target.name)
            targets.append(target)
        return cls(
            ref=_ref(body),
            chart=_str(spec, "chart"),
            image=_str(spec, "image"),
            repository=_str(spec, "repository", required=False),
            chart_version=_str(spec, "chartVersion", required=False),
            repository_secret=_secret_name(spec.get("repositorySecretRef"), "spec.repositorySecretRef"),
            pin_image_digest=spec.get("pinImageDigest") is True,
            verify=_verify_policy(spec.get("verify")),
            image_values=ImageValues.parse(spec.get("imageValues")),
            values=_values(spec.get("values"), "spec.values"),
            targets=tuple(targets),
            values_from=_list(spec.get("valuesFrom"), "spec.valuesFrom"),
            health=HealthSettings.parse(spec, "spec"),
            drift=DriftSettings.parse(spec.get("drift"), "spec"),
        )

    def target(self, name: str) -> Target | None:
        return next((t for t in self.targets if t.name == name), None)


@dataclass(frozen=True)
class SecretKeyRef:
    name: str
    key: str = DEFAULT_KUBECONFIG_KEY


@dataclass(frozen=True)
class Cluster:
    ref: ObjectRef
    context: str = ""
    kubeconfig_secret: SecretKeyRef | None = None
    service_account: str = DEFAULT_SERVICE_ACCOUNT  # impersonated on the operator's own cluster

    @property
    def in_cluster(self) -> bool:
        """The cluster the operator itself runs against (no context, no Secret)."""
        return not self.context and self.kubeconfig_secret is None

    @classmethod
    def parse(cls, body: dict[str, Any]) -> Cluster:
        spec = body.get("spec") or {}
        secret = spec.get("kubeconfigSecretRef")
        secret_ref = None
        if secret:
            if not isinstance(secret, dict) or not secret.get("name"):
                raise InvalidResourceError("spec.kubeconfigSecretRef.name is required")
            secret_ref = SecretKeyRef(name=secret["name"], key=secret.get("key") or DEFAULT_KUBECONFIG_KEY)
        return cls(
            ref=_ref(body),
            context=_str(spec, "context", False),
            kubeconfig_secret=secret_ref,
            service_account=_str(spec, "serviceAccountName", False) or DEFAULT_SERVICE_ACCOUNT,
        )


@dataclass(frozen=True)
class RollbackRequest:
    revision: int
    request_id: str = ""


@dataclass(frozen=True)
class Deployment:
    ref: ObjectRef
    uid: str
    generation: int
    created: str
    application: str
    target: str
    version: str
    rollback: RollbackRequest | None = None
    retry_request_id: str = ""  # a new value runs helm again for the same inputs
    suspend: bool = False
    orphan_on_delete: bool = False
    deleting: bool = False
    has_finalizer: bool = False
    made_release: bool = False  # status records a release this Deployment made
    promotion: dict[str, Any] | None = None  # spec.promotion as written (see promotion_policy)
    annotations: dict[str, str] = field(default_factory=dict)
    managed_fields: tuple[dict[str, Any], ...] = ()

    @property
    def promotion_source(self) -> str:
        """The `from` target of spec.promotion ("" without one): its changes concern us."""
        return str((self.promotion or {}).get("from") or "")

    @property
    def release_name(self) -> str:
        return release_name(self.application, self.target)

    @classmethod
    def parse(cls, body: dict[str, Any]) -> Deployment:
        spec = _spec(body)
        meta = body.get("metadata") or {}
        rollback = None
        raw_rollback = spec.get("rollback")
        if raw_rollback:
            revision = raw_rollback.get("revision") if isinstance(raw_rollback, dict) else None
            if not isinstance(revision, int) or isinstance(revision, bool) or revision < 1:
                raise InvalidResourceError("spec.rollback.revision must be a positive integer")
            rollback = RollbackRequest(revision, str(raw_rollback.get("requestId") or ""))
        policy = spec.get("deletionPolicy") or "Delete"
        if policy not in ("Delete", "Orphan"):
            raise InvalidResourceError("spec.deletionPolicy must be Delete or Orphan")
        return cls(
            ref=_ref(body),
            uid=meta.get("uid", ""),
            generation=int(meta.get("generation") or 0),
            created=meta.get("creationTimestamp") or "",
            application=_str(spec, "application"),
            target=_str(spec, "target"),
            version=_str(spec, "version", required=not isinstance(spec.get("promotion"), dict)),
            rollback=rollback,
            retry_request_id=str(spec.get("retryRequestId") or ""),
            suspend=bool(spec.get("suspend", False)),
            orphan_on_delete=policy == "Orphan",
            deleting=bool(meta.get("deletionTimestamp")),
            has_finalizer=FINALIZER in (meta.get("finalizers") or []),
            made_release=bool(((body.get("status") or {}).get("release") or {}).get("name")),
            promotion=spec["promotion"] if isinstance(spec.get("promotion"), dict) else None,
            annotations={str(k): str(v) for k, v in (meta.get("annotations") or {}).items()},
            managed_fields=tuple(m for m in meta.get("managedFields") or [] if isinstance(m, dict)),
        )


def release_name(application: str, target: str) -> str:
    return f"{application}-{target}"
