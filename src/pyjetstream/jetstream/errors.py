"""JetStream API errors as data: nats-server's numbers and texts, one factory per error.

Owns ApiError (code, err_code, description) and the table of every error nats-server defines
(server/errors.json), so responses carry the exact texts clients branch on. Factories are
named after nats-server's identifiers without the JS prefix and Err/F suffix, e.g.
stream_not_found() for JSStreamNotFoundErr (10059). Knows nothing of streams or the network.
"""

from __future__ import annotations

import re


class ApiError(Exception):
    """A JetStream API error; raised by handlers, rendered as the response's "error" object."""

    __slots__ = ("code", "err_code", "description", "constant")

    def __init__(self, code: int, err_code: int, description: str, constant: str = "") -> None:
        super().__init__(description)
        self.code = code
        self.err_code = err_code
        self.description = description
        self.constant = constant

    def to_dict(self) -> dict[str, object]:
        return {"code": self.code, "err_code": self.err_code, "description": self.description}

    def __repr__(self) -> str:
        return f"ApiError({self.code}, {self.err_code}, {self.description!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ApiError):
            return NotImplemented
        return (self.code, self.err_code, self.description) == (other.code, other.err_code, other.description)

    def __hash__(self) -> int:
        return hash((self.code, self.err_code, self.description))


_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def _make(constant: str, **params: object) -> ApiError:
    code, err_code, text = _TABLE[constant]
    if params:
        text = _PLACEHOLDER.sub(lambda m: str(params.get(m.group(1), m.group(0))), text)
    return ApiError(code, err_code, text, constant)


def by_constant(constant: str, **params: object) -> ApiError:
    """The error named by nats-server's constant, e.g. by_constant("JSStreamNotFoundErr")."""
    return _make(constant, **params)


# Generated from nats-server's server/errors.json: constant -> (code, err_code, description).
_TABLE: dict[str, tuple[int, int, str]] = {
    'JSAccountResourcesExceededErr': (400, 10002, 'resource limits exceeded for account'),
    'JSBadRequestErr': (400, 10003, 'bad request'),
    'JSClusterIncompleteErr': (503, 10004, 'incomplete results'),
    'JSClusterNoPeersErrF': (400, 10005, '{err}'),
    'JSClusterNotActiveErr': (500, 10006, 'JetStream not in clustered mode'),
    'JSClusterNotAssignedErr': (500, 10007, 'JetStream cluster not assigned to this server'),
    'JSClusterNotAvailErr': (503, 10008, 'JetStream system temporarily unavailable'),
    'JSClusterNotLeaderErr': (500, 10009, 'JetStream cluster can not handle request'),
    'JSClusterRequiredErr': (503, 10010, 'JetStream clustering support required'),
    'JSClusterTagsErr': (400, 10011, 'tags placement not supported for operation'),
    'JSConsumerCreateErrF': (500, 10012, '{err}'),
    'JSConsumerNameExistErr': (400, 10013, 'consumer name already in use'),
    'JSConsumerNotFoundErr': (404, 10014, 'consumer not found'),
    'JSSnapshotDeliverSubjectInvalidErr': (400, 10015, 'deliver subject not valid'),
    'JSConsumerDurableNameNotInSubjectErr': (400, 10016, 'consumer expected to be durable but no durable name set in subject'),
    'JSConsumerDurableNameNotMatchSubjectErr': (400, 10017, 'consumer name in subject does not match durable name in request'),
    'JSConsumerDurableNameNotSetErr': (400, 10018, 'consumer expected to be durable but a durable name was not set'),
    'JSConsumerEphemeralWithDurableInSubjectErr': (400, 10019, 'consumer expected to be ephemeral but detected a durable name set in subject'),
    'JSConsumerEphemeralWithDurableNameErr': (400, 10020, 'consumer expected to be ephemeral but a durable name was set in request'),
    'JSStreamExternalApiOverlapErrF': (400, 10021, 'stream external api prefix {prefix} must not overlap with {subject}'),
    'JSStreamExternalDelPrefixOverlapsErrF': (400, 10022, 'stream external delivery prefix {prefix} overlaps with stream subject {subject}'),
    'JSInsufficientResourcesErr': (503, 10023, 'insufficient resources'),
    'JSStreamInvalidExternalDeliverySubjErrF': (400, 10024, 'stream external delivery prefix {prefix} must not contain wildcards'),
    'JSInvalidJSONErr': (400, 10025, 'invalid JSON: {err}'),
    'JSMaximumConsumersLimitErr': (400, 10026, 'maximum consumers limit reached'),
    'JSMaximumStreamsLimitErr': (400, 10027, 'maximum number of streams reached'),
    'JSMemoryResourcesExceededErr': (500, 10028, 'insufficient memory resources available'),
    'JSMirrorConsumerSetupFailedErrF': (500, 10029, '{err}'),
    'JSMirrorMaxMessageSizeTooBigErr': (400, 10030, 'stream mirror must have max message size >= source'),
    'JSMirrorWithSourcesErr': (400, 10031, 'stream mirrors can not also contain other sources'),
    'JSMirrorWithStartSeqAndTimeErr': (400, 10032, 'stream mirrors can not have both start seq and start time configured'),
    'JSMirrorWithSubjectFiltersErr': (400, 10033, 'stream mirrors can not contain filtered subjects'),
    'JSMirrorWithSubjectsErr': (400, 10034, 'stream mirrors can not contain subjects'),
    'JSNoAccountErr': (503, 10035, 'account not found'),
    'JSClusterUnSupportFeatureErr': (503, 10036, 'not currently supported in clustered mode'),
    'JSNoMessageFoundErr': (404, 10037, 'no message found'),
    'JSNotEmptyRequestErr': (400, 10038, 'expected an empty request payload'),
    'JSNotEnabledForAccountErr': (503, 10039, 'JetStream not enabled for account'),
    'JSClusterPeerNotMemberErr': (400, 10040, 'peer not a member'),
    'JSRaftGeneralErrF': (500, 10041, '{err}'),
    'JSRestoreSubscribeFailedErrF': (500, 10042, 'JetStream unable to subscribe to restore snapshot {subject}: {err}'),
    'JSSequenceNotFoundErrF': (400, 10043, 'sequence {seq} not found'),
    'JSClusterServerNotMemberErr': (400, 10044, 'server is not a member of the cluster'),
    'JSSourceConsumerSetupFailedErrF': (500, 10045, '{err}'),
    'JSSourceMaxMessageSizeTooBigErr': (400, 10046, 'stream source must have max message size >= target'),
    'JSStorageResourcesExceededErr': (500, 10047, 'insufficient storage resources available'),
    'JSStreamAssignmentErrF': (500, 10048, '{err}'),
    'JSStreamCreateErrF': (500, 10049, '{err}'),
    'JSStreamDeleteErrF': (500, 10050, '{err}'),
    'JSStreamGeneralErrorF': (500, 10051, '{err}'),
    'JSStreamInvalidConfigF': (500, 10052, '{err}'),
    'JSStreamLimitsErrF': (500, 10053, '{err}'),
    'JSStreamMessageExceedsMaximumErr': (400, 10054, 'message size exceeds maximum allowed'),
    'JSStreamMirrorNotUpdatableErr': (400, 10055, 'stream mirror configuration can not be updated'),
    'JSStreamMismatchErr': (400, 10056, 'stream name in subject does not match request'),
    'JSStreamMsgDeleteFailedF': (500, 10057, '{err}'),
    'JSStreamNameExistErr': (400, 10058, 'stream name already in use with a different configuration'),
    'JSStreamNotFoundErr': (404, 10059, 'stream not found'),
    'JSStreamNotMatchErr': (400, 10060, 'expected stream does not match'),
    'JSStreamReplicasNotUpdatableErr': (400, 10061, 'Replicas configuration can not be updated'),
    'JSStreamRestoreErrF': (500, 10062, 'restore failed: {err}'),
    'JSStreamSequenceNotMatchErr': (503, 10063, 'expected stream sequence does not match'),
    'JSStreamSnapshotErrF': (500, 10064, 'snapshot failed: {err}'),
    'JSStreamSubjectOverlapErr': (400, 10065, 'subjects overlap with an existing stream'),
    'JSStreamTemplateCreateErrF': (500, 10066, '{err}'),
    'JSStreamTemplateDeleteErrF': (500, 10067, '{err}'),
    'JSStreamTemplateNotFoundErr': (404, 10068, 'template not found'),
    'JSStreamUpdateErrF': (500, 10069, '{err}'),
    'JSStreamWrongLastMsgIDErrF': (400, 10070, 'wrong last msg ID: {id}'),
    'JSStreamWrongLastSequenceErrF': (400, 10071, 'wrong last sequence: {seq}'),
    'JSTempStorageFailedErr': (500, 10072, 'JetStream unable to open temp storage for restore'),
    'JSTemplateNameNotMatchSubjectErr': (400, 10073, 'template name in subject does not match request'),
    'JSStreamReplicasNotSupportedErr': (500, 10074, 'replicas > 1 not supported in non-clustered mode'),
    'JSPeerRemapErr': (503, 10075, 'peer remap failed'),
    'JSNotEnabledErr': (503, 10076, 'JetStream not enabled'),
    'JSStreamStoreFailedF': (503, 10077, '{err}'),
    'JSConsumerConfigRequiredErr': (400, 10078, 'consumer config required'),
    'JSConsumerDeliverToWildcardsErr': (400, 10079, 'consumer deliver subject has wildcards'),
    'JSConsumerPushMaxWaitingErr': (400, 10080, 'consumer in push mode can not set max waiting'),
    'JSConsumerDeliverCycleErr': (400, 10081, 'consumer deliver subject forms a cycle'),
    'JSConsumerMaxPendingAckPolicyRequiredErr': (400, 10082, 'consumer requires ack policy for max ack pending'),
    'JSConsumerSmallHeartbeatErr': (400, 10083, 'consumer idle heartbeat needs to be >= 100ms'),
    'JSConsumerPullRequiresAckErr': (400, 10084, 'consumer in pull mode requires explicit ack policy on workqueue stream'),
    'JSConsumerPullNotDurableErr': (400, 10085, 'consumer in pull mode requires a durable name'),
    'JSConsumerPullWithRateLimitErr': (400, 10086, 'consumer in pull mode can not have rate limit set'),
    'JSConsumerMaxWaitingNegativeErr': (400, 10087, 'consumer max waiting needs to be positive'),
    'JSConsumerHBRequiresPushErr': (400, 10088, 'consumer idle heartbeat requires a push based consumer'),
    'JSConsumerFCRequiresPushErr': (400, 10089, 'consumer flow control requires a push based consumer'),
    'JSConsumerDirectRequiresPushErr': (400, 10090, 'consumer direct requires a push based consumer'),
    'JSConsumerDirectRequiresEphemeralErr': (400, 10091, 'consumer direct requires an ephemeral consumer'),
    'JSConsumerOnMappedErr': (400, 10092, 'consumer direct on a mapped consumer'),
    'JSConsumerFilterNotSubsetErr': (400, 10093, 'consumer filter subject is not a valid subset of the interest subjects'),
    'JSConsumerInvalidPolicyErrF': (400, 10094, '{err}'),
    'JSConsumerInvalidSamplingErrF': (400, 10095, 'failed to parse consumer sampling configuration: {err}'),
    'JSStreamInvalidErr': (500, 10096, 'stream not valid'),
    'JSStreamHeaderExceedsMaximumErr': (400, 10097, 'header size exceeds maximum allowed of 64k'),
    'JSConsumerWQRequiresExplicitAckErr': (400, 10098, 'workqueue stream requires explicit ack'),
    'JSConsumerWQMultipleUnfilteredErr': (400, 10099, 'multiple non-filtered consumers not allowed on workqueue stream'),
    'JSConsumerWQConsumerNotUniqueErr': (400, 10100, 'filtered consumer not unique on workqueue stream'),
    'JSConsumerWQConsumerNotDeliverAllErr': (400, 10101, 'consumer must be deliver all on workqueue stream'),
    'JSConsumerNameTooLongErrF': (400, 10102, 'consumer name is too long, maximum allowed is {max}'),
    'JSConsumerBadDurableNameErr': (400, 10103, "durable name can not contain '.', '*', '>'"),
    'JSConsumerStoreFailedErrF': (500, 10104, 'error creating store for consumer: {err}'),
    'JSConsumerExistingActiveErr': (400, 10105, 'consumer already exists and is still active'),
    'JSConsumerReplacementWithDifferentNameErr': (400, 10106, 'consumer replacement durable config not the same'),
    'JSConsumerDescriptionTooLongErrF': (400, 10107, 'consumer description is too long, maximum allowed is {max}'),
    'JSConsumerWithFlowControlNeedsHeartbeats': (400, 10108, 'consumer with flow control also needs heartbeats'),
    'JSStreamSealedErr': (400, 10109, 'invalid operation on sealed stream'),
    'JSStreamPurgeFailedF': (500, 10110, '{err}'),
    'JSStreamRollupFailedF': (500, 10111, '{err}'),
    'JSConsumerInvalidDeliverSubject': (400, 10112, 'invalid push consumer deliver subject'),
    'JSStreamMaxBytesRequired': (400, 10113, 'account requires a stream config to have max bytes set'),
    'JSConsumerMaxRequestBatchNegativeErr': (400, 10114, 'consumer max request batch needs to be > 0'),
    'JSConsumerMaxRequestExpiresTooSmall': (400, 10115, 'consumer max request expires needs to be >= 1ms'),
    'JSConsumerMaxDeliverBackoffErr': (400, 10116, 'max deliver is required to be > length of backoff values'),
    'JSStreamInfoMaxSubjectsErr': (500, 10117, 'subject details would exceed maximum allowed'),
    'JSStreamOfflineErr': (500, 10118, 'stream is offline'),
    'JSConsumerOfflineErr': (500, 10119, 'consumer is offline'),
    'JSNoLimitsErr': (400, 10120, 'no JetStream default or applicable tiered limit present'),
    'JSConsumerMaxPendingAckExcessErrF': (400, 10121, 'consumer max ack pending exceeds system limit of {limit}'),
    'JSStreamMaxStreamBytesExceeded': (400, 10122, 'stream max bytes exceeds account limit max stream bytes'),
    'JSStreamMoveAndScaleErr': (400, 10123, 'can not move and scale a stream in a single update'),
    'JSStreamMoveInProgressErr': (400, 10124, 'stream move already in progress'),
    'JSConsumerMaxRequestBatchExceededF': (400, 10125, 'consumer max request batch exceeds server limit of {limit}'),
    'JSConsumerReplicasExceedsStream': (400, 10126, 'consumer config replica count exceeds parent stream'),
    'JSConsumerNameContainsPathSeparatorsErr': (400, 10127, 'Consumer name can not contain path separators'),
    'JSStreamNameContainsPathSeparatorsErr': (400, 10128, 'Stream name can not contain path separators'),
    'JSStreamReconfigureNotInProgressErr': (400, 10129, 'stream reconfiguration not in progress'),
    'JSStreamNameExistRestoreFailedErr': (400, 10130, 'stream name already in use, cannot restore'),
    'JSConsumerCreateFilterSubjectMismatchErr': (400, 10131, 'Consumer create request did not match filtered subject from create subject'),
    'JSConsumerCreateDurableAndNameMismatch': (400, 10132, 'Consumer Durable and Name have to be equal if both are provided'),
    'JSReplicasCountCannotBeNegative': (400, 10133, 'replicas count cannot be negative'),
    'JSConsumerReplicasShouldMatchStream': (400, 10134, "consumer config replicas must match interest retention stream's replicas"),
    'JSConsumerMetadataLengthErrF': (400, 10135, 'consumer metadata exceeds maximum size of {limit}'),
    'JSConsumerDuplicateFilterSubjects': (400, 10136, 'consumer cannot have both FilterSubject and FilterSubjects specified'),
    'JSConsumerMultipleFiltersNotAllowed': (400, 10137, 'consumer with multiple subject filters cannot use subject based API'),
    'JSConsumerOverlappingSubjectFilters': (400, 10138, 'consumer subject filters cannot overlap'),
    'JSConsumerEmptyFilter': (400, 10139, 'consumer filter in FilterSubjects cannot be empty'),
    'JSSourceDuplicateDetected': (400, 10140, 'duplicate source configuration detected'),
    'JSSourceInvalidStreamName': (400, 10141, 'sourced stream name is invalid'),
    'JSMirrorInvalidStreamName': (400, 10142, 'mirrored stream name is invalid'),
    'JSMirrorWithFirstSeqErr': (400, 10143, 'stream mirrors can not have first sequence configured'),
    'JSSourceMultipleFiltersNotAllowed': (400, 10144, 'source with multiple subject transforms cannot also have a single subject filter'),
    'JSSourceInvalidSubjectFilter': (400, 10145, 'source transform source: {err}'),
    'JSSourceInvalidTransformDestination': (400, 10146, 'source transform: {err}'),
    'JSSourceOverlappingSubjectFilters': (400, 10147, 'source filters can not overlap'),
    'JSConsumerAlreadyExists': (400, 10148, 'consumer already exists'),
    'JSConsumerDoesNotExist': (400, 10149, 'consumer does not exist'),
    'JSMirrorMultipleFiltersNotAllowed': (400, 10150, 'mirror with multiple subject transforms cannot also have a single subject filter'),
    'JSMirrorInvalidSubjectFilter': (400, 10151, 'mirror transform source: {err}'),
    'JSMirrorOverlappingSubjectFilters': (400, 10152, 'mirror subject filters can not overlap'),
    'JSConsumerInactiveThresholdExcess': (400, 10153, 'consumer inactive threshold exceeds system limit of {limit}'),
    'JSMirrorInvalidTransformDestination': (400, 10154, 'mirror transform: {err}'),
    'JSStreamTransformInvalidSource': (400, 10155, 'stream transform source: {err}'),
    'JSStreamTransformInvalidDestination': (400, 10156, 'stream transform: {err}'),
    'JSPedanticErrF': (400, 10157, 'pedantic mode: {err}'),
    'JSStreamDuplicateMessageConflict': (409, 10158, 'duplicate message id is in process'),
    'JSConsumerPriorityPolicyWithoutGroup': (400, 10159, 'Setting PriorityPolicy requires at least one PriorityGroup to be set'),
    'JSConsumerInvalidPriorityGroupErr': (400, 10160, 'Provided priority group does not exist for this consumer'),
    'JSConsumerEmptyGroupName': (400, 10161, 'Group name cannot be an empty string'),
    'JSConsumerInvalidGroupNameErr': (400, 10162, 'Valid priority group name must match A-Z, a-z, 0-9, -_/=)+ and may not exceed 16 characters'),
    'JSStreamExpectedLastSeqPerSubjectNotReady': (503, 10163, 'expected last sequence per subject temporarily unavailable'),
    'JSStreamWrongLastSequenceConstantErr': (400, 10164, 'wrong last sequence'),
    'JSMessageTTLInvalidErr': (400, 10165, 'invalid per-message TTL'),
    'JSMessageTTLDisabledErr': (400, 10166, 'per-message TTL is disabled'),
    'JSStreamTooManyRequests': (429, 10167, 'too many requests'),
    'JSMessageIncrDisabledErr': (400, 10168, 'message counters is disabled'),
    'JSMessageIncrMissingErr': (400, 10169, 'message counter increment is missing'),
    'JSMessageIncrPayloadErr': (400, 10170, 'message counter has payload'),
    'JSMessageIncrInvalidErr': (400, 10171, 'message counter increment is invalid'),
    'JSMessageCounterBrokenErr': (400, 10172, 'message counter is broken'),
    'JSMirrorWithCountersErr': (400, 10173, 'stream mirrors can not also calculate counters'),
    'JSAtomicPublishDisabledErr': (400, 10174, 'atomic publish is disabled'),
    'JSAtomicPublishMissingSeqErr': (400, 10175, 'atomic publish sequence is missing'),
    'JSAtomicPublishIncompleteBatchErr': (400, 10176, 'atomic publish batch is incomplete'),
    'JSAtomicPublishUnsupportedHeaderBatchErr': (400, 10177, 'atomic publish unsupported header used: {header}'),
    'JSConsumerPushWithPriorityGroupErr': (400, 10178, 'priority groups can not be used with push consumers'),
    'JSAtomicPublishInvalidBatchIDErr': (400, 10179, 'atomic publish batch ID is invalid'),
    'JSStreamMinLastSeqErr': (412, 10180, 'min last sequence'),
    'JSConsumerAckPolicyInvalidErr': (400, 10181, 'consumer ack policy invalid'),
    'JSConsumerReplayPolicyInvalidErr': (400, 10182, 'consumer replay policy invalid'),
    'JSConsumerAckWaitNegativeErr': (400, 10183, 'consumer ack wait needs to be positive'),
    'JSConsumerBackOffNegativeErr': (400, 10184, 'consumer backoff needs to be positive'),
    'JSRequiredApiLevelErr': (412, 10185, 'JetStream minimum api level required'),
    'JSMirrorWithMsgSchedulesErr': (400, 10186, 'stream mirrors can not also schedule messages'),
    'JSSourceWithMsgSchedulesErr': (400, 10187, 'stream source can not also schedule messages'),
    'JSMessageSchedulesDisabledErr': (400, 10188, 'message schedules is disabled'),
    'JSMessageSchedulesPatternInvalidErr': (400, 10189, 'message schedules pattern is invalid'),
    'JSMessageSchedulesTargetInvalidErr': (400, 10190, 'message schedules target is invalid'),
    'JSMessageSchedulesTTLInvalidErr': (400, 10191, 'message schedules invalid per-message TTL'),
    'JSMessageSchedulesRollupInvalidErr': (400, 10192, 'message schedules invalid rollup'),
    'JSStreamExpectedLastSeqPerSubjectInvalid': (400, 10193, 'missing sequence for expected last sequence per subject'),
    'JSStreamOfflineReasonErrF': (500, 10194, 'stream is offline: {err}'),
    'JSConsumerOfflineReasonErrF': (500, 10195, 'consumer is offline: {err}'),
    'JSConsumerPriorityGroupWithPolicyNone': (400, 10196, 'consumer can not have priority groups when policy is none'),
    'JSConsumerPinnedTTLWithoutPriorityPolicyNone': (400, 10197, 'PinnedTTL cannot be set when PriorityPolicy is none'),
    'JSMirrorWithAtomicPublishErr': (400, 10198, 'stream mirrors can not also use atomic publishing'),
    'JSAtomicPublishTooLargeBatchErrF': (400, 10199, 'atomic publish batch is too large: {size}'),
    'JSAtomicPublishInvalidBatchCommitErr': (400, 10200, 'atomic publish batch commit is invalid'),
    'JSAtomicPublishContainsDuplicateMessageErr': (400, 10201, 'atomic publish batch contains duplicate message id'),
    'JSClusterServerMemberChangeInflightErr': (400, 10202, 'cluster member change is in progress'),
    'JSMessageSchedulesSourceInvalidErr': (400, 10203, 'message schedules source is invalid'),
    'JSConsumerInvalidResetErr': (400, 10204, 'invalid reset: {err}'),
    'JSBatchPublishDisabledErr': (400, 10205, 'batch publish is disabled'),
    'JSBatchPublishInvalidPatternErr': (400, 10206, 'batch publish pattern is invalid'),
    'JSBatchPublishInvalidBatchIDErr': (400, 10207, 'batch publish ID is invalid'),
    'JSBatchPublishUnknownBatchIDErr': (400, 10208, 'batch publish ID unknown'),
    'JSMirrorWithBatchPublishErr': (400, 10209, 'stream mirrors can not also use batch publishing'),
    'JSAtomicPublishTooManyInflight': (429, 10210, 'atomic publish too many inflight'),
    'JSBatchPublishTooManyInflight': (429, 10211, 'batch publish too many inflight'),
    'JSMessageSchedulesSchedulerInvalidErr': (400, 10212, 'message schedules invalid scheduler'),
    'JSMirrorDurableConsumerCfgInvalid': (400, 10213, 'stream mirror consumer config is invalid'),
    'JSMirrorConsumerRequiresAckFCErr': (400, 10214, 'stream mirror consumer requires flow control ack policy'),
    'JSSourceDurableConsumerCfgInvalid': (400, 10215, 'stream source consumer config is invalid'),
    'JSSourceDurableConsumerDuplicateDetected': (400, 10216, 'duplicate stream source consumer detected'),
    'JSSourceConsumerRequiresAckFCErr': (400, 10217, 'stream source consumer requires flow control ack policy'),
    'JSConsumerAckFCRequiresPushErr': (400, 10218, 'flow control ack policy requires a push based consumer'),
    'JSConsumerAckFCRequiresFCErr': (400, 10219, 'flow control ack policy requires flow control'),
    'JSConsumerAckFCRequiresMaxAckPendingErr': (400, 10220, 'flow control ack policy requires max ack pending'),
    'JSConsumerAckFCRequiresNoAckWaitErr': (400, 10221, 'flow control ack policy requires unset ack wait'),
    'JSConsumerAckFCRequiresNoMaxDeliverErr': (400, 10222, 'flow control ack policy requires unset max deliver'),
    'JSMessageSchedulesTimeZoneInvalidErr': (400, 10223, 'message schedules time zone is invalid'),
    'JSClusterRescueErr': (400, 10224, 'JetStream system rescue not applied: {err}'),
    'JSConsumerStreamIdentityMismatchF': (400, 10225, "consumer's stream identity does not match: {msg}"),
    'JSStreamReconfigureInProgressErr': (400, 10226, 'stream reconfiguration already in progress'),
    'JSMessageSourceHdrNotAllowedErr': (400, 10227, 'message stream source header is not allowed'),
}


def account_resources_exceeded() -> ApiError:
    return _make('JSAccountResourcesExceededErr')


def bad_request() -> ApiError:
    return _make('JSBadRequestErr')


def cluster_incomplete() -> ApiError:
    return _make('JSClusterIncompleteErr')


def cluster_no_peers(err: object) -> ApiError:
    return _make('JSClusterNoPeersErrF', err=err)


def cluster_not_active() -> ApiError:
    return _make('JSClusterNotActiveErr')


def cluster_not_assigned() -> ApiError:
    return _make('JSClusterNotAssignedErr')


def cluster_not_avail() -> ApiError:
    return _make('JSClusterNotAvailErr')


def cluster_not_leader() -> ApiError:
    return _make('JSClusterNotLeaderErr')


def cluster_required() -> ApiError:
    return _make('JSClusterRequiredErr')


def cluster_tags() -> ApiError:
    return _make('JSClusterTagsErr')


def consumer_create(err: object) -> ApiError:
    return _make('JSConsumerCreateErrF', err=err)


def consumer_name_exist() -> ApiError:
    return _make('JSConsumerNameExistErr')


def consumer_not_found() -> ApiError:
    return _make('JSConsumerNotFoundErr')


def snapshot_deliver_subject_invalid() -> ApiError:
    return _make('JSSnapshotDeliverSubjectInvalidErr')


def consumer_durable_name_not_in_subject() -> ApiError:
    return _make('JSConsumerDurableNameNotInSubjectErr')


def consumer_durable_name_not_match_subject() -> ApiError:
    return _make('JSConsumerDurableNameNotMatchSubjectErr')


def consumer_durable_name_not_set() -> ApiError:
    return _make('JSConsumerDurableNameNotSetErr')


def consumer_ephemeral_with_durable_in_subject() -> ApiError:
    return _make('JSConsumerEphemeralWithDurableInSubjectErr')


def consumer_ephemeral_with_durable_name() -> ApiError:
    return _make('JSConsumerEphemeralWithDurableNameErr')


def stream_external_api_overlap(prefix: object, subject: object) -> ApiError:
    return _make('JSStreamExternalApiOverlapErrF', prefix=prefix, subject=subject)


def stream_external_del_prefix_overlaps(prefix: object, subject: object) -> ApiError:
    return _make('JSStreamExternalDelPrefixOverlapsErrF', prefix=prefix, subject=subject)


def insufficient_resources() -> ApiError:
    return _make('JSInsufficientResourcesErr')


def stream_invalid_external_delivery_subj(prefix: object) -> ApiError:
    return _make('JSStreamInvalidExternalDeliverySubjErrF', prefix=prefix)


def invalid_json(err: object = "") -> ApiError:
    # nats-server 2.9 says only "invalid JSON"; newer ones append the decoder's message.
    if not err:
        code, err_code, _ = _TABLE['JSInvalidJSONErr']
        return ApiError(code, err_code, "invalid JSON", 'JSInvalidJSONErr')
    return _make('JSInvalidJSONErr', err=err)


def maximum_consumers_limit() -> ApiError:
    return _make('JSMaximumConsumersLimitErr')


def maximum_streams_limit() -> ApiError:
    return _make('JSMaximumStreamsLimitErr')


def memory_resources_exceeded() -> ApiError:
    return _make('JSMemoryResourcesExceededErr')


def mirror_consumer_setup_failed(err: object) -> ApiError:
    return _make('JSMirrorConsumerSetupFailedErrF', err=err)


def mirror_max_message_size_too_big() -> ApiError:
    return _make('JSMirrorMaxMessageSizeTooBigErr')


def mirror_with_sources() -> ApiError:
    return _make('JSMirrorWithSourcesErr')


def mirror_with_start_seq_and_time() -> ApiError:
    return _make('JSMirrorWithStartSeqAndTimeErr')


def mirror_with_subject_filters() -> ApiError:
    return _make('JSMirrorWithSubjectFiltersErr')


def mirror_with_subjects() -> ApiError:
    return _make('JSMirrorWithSubjectsErr')


def no_account() -> ApiError:
    return _make('JSNoAccountErr')


def cluster_un_support_feature() -> ApiError:
    return _make('JSClusterUnSupportFeatureErr')


def no_message_found() -> ApiError:
    return _make('JSNoMessageFoundErr')


def not_empty_request() -> ApiError:
    return _make('JSNotEmptyRequestErr')


def not_enabled_for_account() -> ApiError:
    return _make('JSNotEnabledForAccountErr')


def cluster_peer_not_member() -> ApiError:
    return _make('JSClusterPeerNotMemberErr')


def raft_general(err: object) -> ApiError:
    return _make('JSRaftGeneralErrF', err=err)


def restore_subscribe_failed(subject: object, err: object) -> ApiError:
    return _make('JSRestoreSubscribeFailedErrF', subject=subject, err=err)


def sequence_not_found(seq: object) -> ApiError:
    return _make('JSSequenceNotFoundErrF', seq=seq)


def cluster_server_not_member() -> ApiError:
    return _make('JSClusterServerNotMemberErr')


def source_consumer_setup_failed(err: object) -> ApiError:
    return _make('JSSourceConsumerSetupFailedErrF', err=err)


def source_max_message_size_too_big() -> ApiError:
    return _make('JSSourceMaxMessageSizeTooBigErr')


def storage_resources_exceeded() -> ApiError:
    return _make('JSStorageResourcesExceededErr')


def stream_assignment(err: object) -> ApiError:
    return _make('JSStreamAssignmentErrF', err=err)


def stream_create(err: object) -> ApiError:
    return _make('JSStreamCreateErrF', err=err)


def stream_delete(err: object) -> ApiError:
    return _make('JSStreamDeleteErrF', err=err)


def stream_general(err: object) -> ApiError:
    return _make('JSStreamGeneralErrorF', err=err)


def stream_invalid_config(err: object) -> ApiError:
    return _make('JSStreamInvalidConfigF', err=err)


def stream_limits(err: object) -> ApiError:
    return _make('JSStreamLimitsErrF', err=err)


def stream_message_exceeds_maximum() -> ApiError:
    return _make('JSStreamMessageExceedsMaximumErr')


def stream_mirror_not_updatable() -> ApiError:
    return _make('JSStreamMirrorNotUpdatableErr')


def stream_mismatch() -> ApiError:
    return _make('JSStreamMismatchErr')


def stream_msg_delete_failed(err: object) -> ApiError:
    return _make('JSStreamMsgDeleteFailedF', err=err)


def stream_name_exist() -> ApiError:
    return _make('JSStreamNameExistErr')


def stream_not_found() -> ApiError:
    return _make('JSStreamNotFoundErr')


def stream_not_match() -> ApiError:
    return _make('JSStreamNotMatchErr')


def stream_replicas_not_updatable() -> ApiError:
    return _make('JSStreamReplicasNotUpdatableErr')


def stream_restore(err: object) -> ApiError:
    return _make('JSStreamRestoreErrF', err=err)


def stream_sequence_not_match() -> ApiError:
    return _make('JSStreamSequenceNotMatchErr')


def stream_snapshot(err: object) -> ApiError:
    return _make('JSStreamSnapshotErrF', err=err)


def stream_subject_overlap() -> ApiError:
    return _make('JSStreamSubjectOverlapErr')


def stream_template_create(err: object) -> ApiError:
    return _make('JSStreamTemplateCreateErrF', err=err)


def stream_template_delete(err: object) -> ApiError:
    return _make('JSStreamTemplateDeleteErrF', err=err)


def stream_template_not_found() -> ApiError:
    return _make('JSStreamTemplateNotFoundErr')


def stream_update(err: object) -> ApiError:
    return _make('JSStreamUpdateErrF', err=err)


def stream_wrong_last_msg_id(id: object) -> ApiError:
    return _make('JSStreamWrongLastMsgIDErrF', id=id)


def stream_wrong_last_sequence(seq: object) -> ApiError:
    return _make('JSStreamWrongLastSequenceErrF', seq=seq)


def temp_storage_failed() -> ApiError:
    return _make('JSTempStorageFailedErr')


def template_name_not_match_subject() -> ApiError:
    return _make('JSTemplateNameNotMatchSubjectErr')


def stream_replicas_not_supported() -> ApiError:
    return _make('JSStreamReplicasNotSupportedErr')


def peer_remap() -> ApiError:
    return _make('JSPeerRemapErr')


def not_enabled() -> ApiError:
    return _make('JSNotEnabledErr')


def stream_store_failed(err: object) -> ApiError:
    return _make('JSStreamStoreFailedF', err=err)


def consumer_config_required() -> ApiError:
    return _make('JSConsumerConfigRequiredErr')


def consumer_deliver_to_wildcards() -> ApiError:
    return _make('JSConsumerDeliverToWildcardsErr')


def consumer_push_max_waiting() -> ApiError:
    return _make('JSConsumerPushMaxWaitingErr')


def consumer_deliver_cycle() -> ApiError:
    return _make('JSConsumerDeliverCycleErr')


def consumer_max_pending_ack_policy_required() -> ApiError:
    return _make('JSConsumerMaxPendingAckPolicyRequiredErr')


def consumer_small_heartbeat() -> ApiError:
    return _make('JSConsumerSmallHeartbeatErr')


def consumer_pull_requires_ack() -> ApiError:
    return _make('JSConsumerPullRequiresAckErr')


def consumer_pull_not_durable() -> ApiError:
    return _make('JSConsumerPullNotDurableErr')


def consumer_pull_with_rate_limit() -> ApiError:
    return _make('JSConsumerPullWithRateLimitErr')


def consumer_max_waiting_negative() -> ApiError:
    return _make('JSConsumerMaxWaitingNegativeErr')


def consumer_hb_requires_push() -> ApiError:
    return _make('JSConsumerHBRequiresPushErr')


def consumer_fc_requires_push() -> ApiError:
    return _make('JSConsumerFCRequiresPushErr')


def consumer_direct_requires_push() -> ApiError:
    return _make('JSConsumerDirectRequiresPushErr')


def consumer_direct_requires_ephemeral() -> ApiError:
    return _make('JSConsumerDirectRequiresEphemeralErr')


def consumer_on_mapped() -> ApiError:
    return _make('JSConsumerOnMappedErr')


def consumer_filter_not_subset() -> ApiError:
    return _make('JSConsumerFilterNotSubsetErr')


def consumer_invalid_policy(err: object) -> ApiError:
    return _make('JSConsumerInvalidPolicyErrF', err=err)


def consumer_invalid_sampling(err: object) -> ApiError:
    return _make('JSConsumerInvalidSamplingErrF', err=err)


def stream_invalid() -> ApiError:
    return _make('JSStreamInvalidErr')


def stream_header_exceeds_maximum() -> ApiError:
    return _make('JSStreamHeaderExceedsMaximumErr')


def consumer_wq_requires_explicit_ack() -> ApiError:
    return _make('JSConsumerWQRequiresExplicitAckErr')


def consumer_wq_multiple_unfiltered() -> ApiError:
    return _make('JSConsumerWQMultipleUnfilteredErr')


def consumer_wq_consumer_not_unique() -> ApiError:
    return _make('JSConsumerWQConsumerNotUniqueErr')


def consumer_wq_consumer_not_deliver_all() -> ApiError:
    return _make('JSConsumerWQConsumerNotDeliverAllErr')


def consumer_name_too_long(max: object) -> ApiError:
    return _make('JSConsumerNameTooLongErrF', max=max)


def consumer_bad_durable_name() -> ApiError:
    return _make('JSConsumerBadDurableNameErr')


def consumer_store_failed(err: object) -> ApiError:
    return _make('JSConsumerStoreFailedErrF', err=err)


def consumer_existing_active() -> ApiError:
    return _make('JSConsumerExistingActiveErr')


def consumer_replacement_with_different_name() -> ApiError:
    return _make('JSConsumerReplacementWithDifferentNameErr')


def consumer_description_too_long(max: object) -> ApiError:
    return _make('JSConsumerDescriptionTooLongErrF', max=max)


def consumer_with_flow_control_needs_heartbeats() -> ApiError:
    return _make('JSConsumerWithFlowControlNeedsHeartbeats')


def stream_sealed() -> ApiError:
    return _make('JSStreamSealedErr')


def stream_purge_failed(err: object) -> ApiError:
    return _make('JSStreamPurgeFailedF', err=err)


def stream_rollup_failed(err: object) -> ApiError:
    return _make('JSStreamRollupFailedF', err=err)


def consumer_invalid_deliver_subject() -> ApiError:
    return _make('JSConsumerInvalidDeliverSubject')


def stream_max_bytes_required() -> ApiError:
    return _make('JSStreamMaxBytesRequired')


def consumer_max_request_batch_negative() -> ApiError:
    return _make('JSConsumerMaxRequestBatchNegativeErr')


def consumer_max_request_expires_too_small() -> ApiError:
    return _make('JSConsumerMaxRequestExpiresTooSmall')


def consumer_max_deliver_backoff() -> ApiError:
    return _make('JSConsumerMaxDeliverBackoffErr')


def stream_info_max_subjects() -> ApiError:
    return _make('JSStreamInfoMaxSubjectsErr')


def stream_offline() -> ApiError:
    return _make('JSStreamOfflineErr')


def consumer_offline() -> ApiError:
    return _make('JSConsumerOfflineErr')


def no_limits() -> ApiError:
    return _make('JSNoLimitsErr')


def consumer_max_pending_ack_excess(limit: object) -> ApiError:
    return _make('JSConsumerMaxPendingAckExcessErrF', limit=limit)


def stream_max_stream_bytes_exceeded() -> ApiError:
    return _make('JSStreamMaxStreamBytesExceeded')


def stream_move_and_scale() -> ApiError:
    return _make('JSStreamMoveAndScaleErr')


def stream_move_in_progress() -> ApiError:
    return _make('JSStreamMoveInProgressErr')


def consumer_max_request_batch_exceeded(limit: object) -> ApiError:
    return _make('JSConsumerMaxRequestBatchExceededF', limit=limit)


def consumer_replicas_exceeds_stream() -> ApiError:
    return _make('JSConsumerReplicasExceedsStream')


def consumer_name_contains_path_separators() -> ApiError:
    return _make('JSConsumerNameContainsPathSeparatorsErr')


def stream_name_contains_path_separators() -> ApiError:
    return _make('JSStreamNameContainsPathSeparatorsErr')


def stream_reconfigure_not_in_progress() -> ApiError:
    return _make('JSStreamReconfigureNotInProgressErr')


def stream_name_exist_restore_failed() -> ApiError:
    return _make('JSStreamNameExistRestoreFailedErr')


def consumer_create_filter_subject_mismatch() -> ApiError:
    return _make('JSConsumerCreateFilterSubjectMismatchErr')


def consumer_create_durable_and_name_mismatch() -> ApiError:
    return _make('JSConsumerCreateDurableAndNameMismatch')


def replicas_count_cannot_be_negative() -> ApiError:
    return _make('JSReplicasCountCannotBeNegative')


def consumer_replicas_should_match_stream() -> ApiError:
    return _make('JSConsumerReplicasShouldMatchStream')


def consumer_metadata_length(limit: object) -> ApiError:
    return _make('JSConsumerMetadataLengthErrF', limit=limit)


def consumer_duplicate_filter_subjects() -> ApiError:
    return _make('JSConsumerDuplicateFilterSubjects')


def consumer_multiple_filters_not_allowed() -> ApiError:
    return _make('JSConsumerMultipleFiltersNotAllowed')


def consumer_overlapping_subject_filters() -> ApiError:
    return _make('JSConsumerOverlappingSubjectFilters')


def consumer_empty_filter() -> ApiError:
    return _make('JSConsumerEmptyFilter')


def source_duplicate_detected() -> ApiError:
    return _make('JSSourceDuplicateDetected')


def source_invalid_stream_name() -> ApiError:
    return _make('JSSourceInvalidStreamName')


def mirror_invalid_stream_name() -> ApiError:
    return _make('JSMirrorInvalidStreamName')


def mirror_with_first_seq() -> ApiError:
    return _make('JSMirrorWithFirstSeqErr')


def source_multiple_filters_not_allowed() -> ApiError:
    return _make('JSSourceMultipleFiltersNotAllowed')


def source_invalid_subject_filter(err: object) -> ApiError:
    return _make('JSSourceInvalidSubjectFilter', err=err)


def source_invalid_transform_destination(err: object) -> ApiError:
    return _make('JSSourceInvalidTransformDestination', err=err)


def source_overlapping_subject_filters() -> ApiError:
    return _make('JSSourceOverlappingSubjectFilters')


def consumer_already_exists() -> ApiError:
    return _make('JSConsumerAlreadyExists')


def consumer_does_not_exist() -> ApiError:
    return _make('JSConsumerDoesNotExist')


def mirror_multiple_filters_not_allowed() -> ApiError:
    return _make('JSMirrorMultipleFiltersNotAllowed')


def mirror_invalid_subject_filter(err: object) -> ApiError:
    return _make('JSMirrorInvalidSubjectFilter', err=err)


def mirror_overlapping_subject_filters() -> ApiError:
    return _make('JSMirrorOverlappingSubjectFilters')


def consumer_inactive_threshold_excess(limit: object) -> ApiError:
    return _make('JSConsumerInactiveThresholdExcess', limit=limit)


def mirror_invalid_transform_destination(err: object) -> ApiError:
    return _make('JSMirrorInvalidTransformDestination', err=err)


def stream_transform_invalid_source(err: object) -> ApiError:
    return _make('JSStreamTransformInvalidSource', err=err)


def stream_transform_invalid_destination(err: object) -> ApiError:
    return _make('JSStreamTransformInvalidDestination', err=err)


def pedantic(err: object) -> ApiError:
    return _make('JSPedanticErrF', err=err)


def stream_duplicate_message_conflict() -> ApiError:
    return _make('JSStreamDuplicateMessageConflict')


def consumer_priority_policy_without_group() -> ApiError:
    return _make('JSConsumerPriorityPolicyWithoutGroup')


def consumer_invalid_priority_group() -> ApiError:
    return _make('JSConsumerInvalidPriorityGroupErr')


def consumer_empty_group_name() -> ApiError:
    return _make('JSConsumerEmptyGroupName')


def consumer_invalid_group_name() -> ApiError:
    return _make('JSConsumerInvalidGroupNameErr')


def stream_expected_last_seq_per_subject_not_ready() -> ApiError:
    return _make('JSStreamExpectedLastSeqPerSubjectNotReady')


def stream_wrong_last_sequence_constant() -> ApiError:
    return _make('JSStreamWrongLastSequenceConstantErr')


def message_ttl_invalid() -> ApiError:
    return _make('JSMessageTTLInvalidErr')


def message_ttl_disabled() -> ApiError:
    return _make('JSMessageTTLDisabledErr')


def stream_too_many_requests() -> ApiError:
    return _make('JSStreamTooManyRequests')


def message_incr_disabled() -> ApiError:
    return _make('JSMessageIncrDisabledErr')


def message_incr_missing() -> ApiError:
    return _make('JSMessageIncrMissingErr')


def message_incr_payload() -> ApiError:
    return _make('JSMessageIncrPayloadErr')


def message_incr_invalid() -> ApiError:
    return _make('JSMessageIncrInvalidErr')


def message_counter_broken() -> ApiError:
    return _make('JSMessageCounterBrokenErr')


def mirror_with_counters() -> ApiError:
    return _make('JSMirrorWithCountersErr')


def atomic_publish_disabled() -> ApiError:
    return _make('JSAtomicPublishDisabledErr')


def atomic_publish_missing_seq() -> ApiError:
    return _make('JSAtomicPublishMissingSeqErr')


def atomic_publish_incomplete_batch() -> ApiError:
    return _make('JSAtomicPublishIncompleteBatchErr')


def atomic_publish_unsupported_header_batch(header: object) -> ApiError:
    return _make('JSAtomicPublishUnsupportedHeaderBatchErr', header=header)


def consumer_push_with_priority_group() -> ApiError:
    return _make('JSConsumerPushWithPriorityGroupErr')


def atomic_publish_invalid_batch_id() -> ApiError:
    return _make('JSAtomicPublishInvalidBatchIDErr')


def stream_min_last_seq() -> ApiError:
    return _make('JSStreamMinLastSeqErr')


def consumer_ack_policy_invalid() -> ApiError:
    return _make('JSConsumerAckPolicyInvalidErr')


def consumer_replay_policy_invalid() -> ApiError:
    return _make('JSConsumerReplayPolicyInvalidErr')


def consumer_ack_wait_negative() -> ApiError:
    return _make('JSConsumerAckWaitNegativeErr')


def consumer_back_off_negative() -> ApiError:
    return _make('JSConsumerBackOffNegativeErr')


def required_api_level() -> ApiError:
    return _make('JSRequiredApiLevelErr')


def mirror_with_msg_schedules() -> ApiError:
    return _make('JSMirrorWithMsgSchedulesErr')


def source_with_msg_schedules() -> ApiError:
    return _make('JSSourceWithMsgSchedulesErr')


def message_schedules_disabled() -> ApiError:
    return _make('JSMessageSchedulesDisabledErr')


def message_schedules_pattern_invalid() -> ApiError:
    return _make('JSMessageSchedulesPatternInvalidErr')


def message_schedules_target_invalid() -> ApiError:
    return _make('JSMessageSchedulesTargetInvalidErr')


def message_schedules_ttl_invalid() -> ApiError:
    return _make('JSMessageSchedulesTTLInvalidErr')


def message_schedules_rollup_invalid() -> ApiError:
    return _make('JSMessageSchedulesRollupInvalidErr')


def stream_expected_last_seq_per_subject_invalid() -> ApiError:
    return _make('JSStreamExpectedLastSeqPerSubjectInvalid')


def stream_offline_reason(err: object) -> ApiError:
    return _make('JSStreamOfflineReasonErrF', err=err)


def consumer_offline_reason(err: object) -> ApiError:
    return _make('JSConsumerOfflineReasonErrF', err=err)


def consumer_priority_group_with_policy_none() -> ApiError:
    return _make('JSConsumerPriorityGroupWithPolicyNone')


def consumer_pinned_ttl_without_priority_policy_none() -> ApiError:
    return _make('JSConsumerPinnedTTLWithoutPriorityPolicyNone')


def mirror_with_atomic_publish() -> ApiError:
    return _make('JSMirrorWithAtomicPublishErr')


def atomic_publish_too_large_batch(size: object) -> ApiError:
    return _make('JSAtomicPublishTooLargeBatchErrF', size=size)


def atomic_publish_invalid_batch_commit() -> ApiError:
    return _make('JSAtomicPublishInvalidBatchCommitErr')


def atomic_publish_contains_duplicate_message() -> ApiError:
    return _make('JSAtomicPublishContainsDuplicateMessageErr')


def cluster_server_member_change_inflight() -> ApiError:
    return _make('JSClusterServerMemberChangeInflightErr')


def message_schedules_source_invalid() -> ApiError:
    return _make('JSMessageSchedulesSourceInvalidErr')


def consumer_invalid_reset(err: object) -> ApiError:
    return _make('JSConsumerInvalidResetErr', err=err)


def batch_publish_disabled() -> ApiError:
    return _make('JSBatchPublishDisabledErr')


def batch_publish_invalid_pattern() -> ApiError:
    return _make('JSBatchPublishInvalidPatternErr')


def batch_publish_invalid_batch_id() -> ApiError:
    return _make('JSBatchPublishInvalidBatchIDErr')


def batch_publish_unknown_batch_id() -> ApiError:
    return _make('JSBatchPublishUnknownBatchIDErr')


def mirror_with_batch_publish() -> ApiError:
    return _make('JSMirrorWithBatchPublishErr')


def atomic_publish_too_many_inflight() -> ApiError:
    return _make('JSAtomicPublishTooManyInflight')


def batch_publish_too_many_inflight() -> ApiError:
    return _make('JSBatchPublishTooManyInflight')


def message_schedules_scheduler_invalid() -> ApiError:
    return _make('JSMessageSchedulesSchedulerInvalidErr')


def mirror_durable_consumer_cfg_invalid() -> ApiError:
    return _make('JSMirrorDurableConsumerCfgInvalid')


def mirror_consumer_requires_ack_fc() -> ApiError:
    return _make('JSMirrorConsumerRequiresAckFCErr')


def source_durable_consumer_cfg_invalid() -> ApiError:
    return _make('JSSourceDurableConsumerCfgInvalid')


def source_durable_consumer_duplicate_detected() -> ApiError:
    return _make('JSSourceDurableConsumerDuplicateDetected')


def source_consumer_requires_ack_fc() -> ApiError:
    return _make('JSSourceConsumerRequiresAckFCErr')


def consumer_ack_fc_requires_push() -> ApiError:
    return _make('JSConsumerAckFCRequiresPushErr')


def consumer_ack_fc_requires_fc() -> ApiError:
    return _make('JSConsumerAckFCRequiresFCErr')


def consumer_ack_fc_requires_max_ack_pending() -> ApiError:
    return _make('JSConsumerAckFCRequiresMaxAckPendingErr')


def consumer_ack_fc_requires_no_ack_wait() -> ApiError:
    return _make('JSConsumerAckFCRequiresNoAckWaitErr')


def consumer_ack_fc_requires_no_max_deliver() -> ApiError:
    return _make('JSConsumerAckFCRequiresNoMaxDeliverErr')


def message_schedules_time_zone_invalid() -> ApiError:
    return _make('JSMessageSchedulesTimeZoneInvalidErr')


def cluster_rescue(err: object) -> ApiError:
    return _make('JSClusterRescueErr', err=err)


def consumer_stream_identity_mismatch(msg: object) -> ApiError:
    return _make('JSConsumerStreamIdentityMismatchF', msg=msg)


def stream_reconfigure_in_progress() -> ApiError:
    return _make('JSStreamReconfigureInProgressErr')


def message_source_hdr_not_allowed() -> ApiError:
    return _make('JSMessageSourceHdrNotAllowedErr')
