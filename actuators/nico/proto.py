"""NICo's health-report messages, declared here from the field names and numbers NICo publishes.

NICo's core (carbide-api) serves health reports over gRPC, service ``forge.Forge``; the REST document
does not carry them. The messages below follow ``crates/rpc/proto/health.proto`` and
``crates/rpc/proto/forge.proto`` of github.com/NVIDIA/infra-controller field for field (names, numbers,
types), which is all the wire format depends on; they are written as descriptors in Python instead of
generated from ``.proto`` files so the product needs ``protobuf`` and ``grpcio`` but no code generator.
Only the calls the repair integration uses are declared: insert/remove/list a machine health report.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, empty_pb2, message_factory, timestamp_pb2

SERVICE = "forge.Forge"
INSERT = f"/{SERVICE}/InsertMachineHealthReport"
REMOVE = f"/{SERVICE}/RemoveMachineHealthReport"
LIST = f"/{SERVICE}/ListMachineHealthReports"

_F = descriptor_pb2.FieldDescriptorProto
_STRING, _MSG, _ENUM = _F.TYPE_STRING, _F.TYPE_MESSAGE, _F.TYPE_ENUM
_ONE, _MANY = _F.LABEL_OPTIONAL, _F.LABEL_REPEATED

# (name, number, type, label, type_name, proto3 optional)
_Field = tuple[str, int, int, int, str, bool]

_HEALTH: dict[str, list[_Field]] = {
    "HealthReport": [
        ("source", 1, _STRING, _ONE, "", False),
        ("triggered_by", 5, _STRING, _ONE, "", True),
        ("observed_at", 2, _MSG, _ONE, ".google.protobuf.Timestamp", True),
        ("successes", 3, _MSG, _MANY, ".health.HealthProbeSuccess", False),
        ("alerts", 4, _MSG, _MANY, ".health.HealthProbeAlert", False),
    ],
    "HealthProbeAlert": [
        ("id", 1, _STRING, _ONE, "", False),
        ("target", 6, _STRING, _ONE, "", True),
        ("in_alert_since", 2, _MSG, _ONE, ".google.protobuf.Timestamp", True),
        ("message", 3, _STRING, _ONE, "", False),
        ("tenant_message", 4, _STRING, _ONE, "", True),
        ("classifications", 5, _STRING, _MANY, "", False),
    ],
    "HealthProbeSuccess": [
        ("id", 1, _STRING, _ONE, "", False),
        ("target", 2, _STRING, _ONE, "", True),
    ],
}
_COMMON: dict[str, list[_Field]] = {"MachineId": [("id", 1, _STRING, _ONE, "", False)]}
_FORGE: dict[str, list[_Field]] = {
    "HealthReportEntry": [
        ("report", 1, _MSG, _ONE, ".health.HealthReport", False),
        ("mode", 2, _ENUM, _ONE, ".forge.HealthReportApplyMode", False),
    ],
    "InsertMachineHealthReportRequest": [
        ("machine_id", 1, _MSG, _ONE, ".common.MachineId", False),
        ("health_report_entry", 2, _MSG, _ONE, ".forge.HealthReportEntry", False),
    ],
    "RemoveMachineHealthReportRequest": [
        ("machine_id", 1, _MSG, _ONE, ".common.MachineId", False),
        ("source", 2, _STRING, _ONE, "", False),
    ],
    "ListHealthReportResponse": [
        ("health_report_entries", 1, _MSG, _MANY, ".forge.HealthReportEntry", False),
    ],
}
APPLY_MODES = {"Merge": 0, "Replace": 1}
"""``forge.HealthReportApplyMode``: a Merge report joins the machine's other reports (one per source,
aggregated into its health); a Replace report stands in for the aggregate. Either way an insert
replaces any earlier report of the same source (``crates/api/src/handlers/health.rs``)."""


def _file(name: str, package: str, messages: dict[str, list[_Field]], deps: list[str]) -> bytes:
    fd = descriptor_pb2.FileDescriptorProto(name=name, package=package, syntax="proto3", dependency=deps)
    if package == "forge":
        enum = fd.enum_type.add(name="HealthReportApplyMode")
        for mode, value in APPLY_MODES.items():
            enum.value.add(name=mode, number=value)
    for msg_name, fields in messages.items():
        msg = fd.message_type.add(name=msg_name)
        for fname, number, ftype, label, type_name, optional in fields:
            f = msg.field.add(name=fname, number=number, type=ftype, label=label)
            if type_name:
                f.type_name = type_name
            if optional:  # proto3 `optional`: a synthetic one-field oneof keeps presence
                f.proto3_optional = True
                f.oneof_index = len(msg.oneof_decl)
                msg.oneof_decl.add(name=f"_{fname}")
    return bytes(fd.SerializeToString())


def _build() -> dict[str, Any]:
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(timestamp_pb2.DESCRIPTOR.serialized_pb)
    pool.AddSerializedFile(empty_pb2.DESCRIPTOR.serialized_pb)
    ts = "google/protobuf/timestamp.proto"
    pool.AddSerializedFile(_file("breakfix/nico/health.proto", "health", _HEALTH, [ts]))
    pool.AddSerializedFile(_file("breakfix/nico/common.proto", "common", _COMMON, []))
    deps = ["breakfix/nico/health.proto", "breakfix/nico/common.proto"]
    pool.AddSerializedFile(_file("breakfix/nico/forge.proto", "forge", _FORGE, deps))
    names = (
        [f"health.{n}" for n in _HEALTH] + [f"common.{n}" for n in _COMMON] + [f"forge.{n}" for n in _FORGE]
    )
    out = {n.split(".")[1]: message_factory.GetMessageClass(pool.FindMessageTypeByName(n)) for n in names}
    out["Empty"] = message_factory.GetMessageClass(pool.FindMessageTypeByName("google.protobuf.Empty"))
    return out


_CLASSES = _build()
HealthReport = _CLASSES["HealthReport"]
HealthProbeAlert = _CLASSES["HealthProbeAlert"]
MachineId = _CLASSES["MachineId"]
HealthReportEntry = _CLASSES["HealthReportEntry"]
InsertMachineHealthReportRequest = _CLASSES["InsertMachineHealthReportRequest"]
RemoveMachineHealthReportRequest = _CLASSES["RemoveMachineHealthReportRequest"]
ListHealthReportResponse = _CLASSES["ListHealthReportResponse"]
Empty = _CLASSES["Empty"]
