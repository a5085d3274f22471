"""Typed async clients of every internal service, each with an explicit timeout and the caller's
request id forwarded. Failures are ``ServiceUnavailable`` (degrade) or ``ServiceRejected`` (4xx)."""

from movierec.clients.base import ServiceClient
from movierec.clients.errors import ClientError, NotFound, ServiceRejected, ServiceTimeout, ServiceUnavailable
from movierec.clients.features import FeatureExtractorClient
from movierec.clients.feedback import FeedbackClient
from movierec.clients.policy import PolicyClient
from movierec.clients.ranker import RankerClient, RankerPool

__all__ = [
    "ServiceClient", "ClientError", "NotFound", "ServiceRejected", "ServiceTimeout", "ServiceUnavailable",
    "FeatureExtractorClient", "FeedbackClient", "PolicyClient", "RankerClient", "RankerPool",
]
