"""Constants the CLI needs without importing the generator (kept light: `runway-models --help` loads this)."""

TARGETS = ("serve-config", "kuberay", "helm-values", "standalone", "all")
DEFAULT_RELEASE = "runway-models"
#: Kubernetes version the objects are validated against (kubernetes-validate bundles 1.25-1.37; we accept >= 1.30).
DEFAULT_KUBE_VERSION = "1.33"
KUBERAY_VERSION = "1.7.0"
