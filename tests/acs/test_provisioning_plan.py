"""The provisioning plan alone: what is read, what is set, what is reported back."""

from __future__ import annotations

from knock.acs.provisioning import (
    Credentials,
    CrPolicy,
    Provisioned,
    Provisioning,
    StunOffer,
    XmppAccountOffer,
    XmppOffer,
    data_model_root,
    provisioning_for,
    random_credentials,
)
from knock.cwmp.faults import cpe_fault
from knock.cwmp.rpcs import (
    AddObject,
    AddObjectResponse,
    GetParameterValues,
    GetParameterValuesResponse,
    ParameterValueStruct,
    SetParameterValues,
    SetParameterValuesResponse,
)
from knock.store.rows import ParamValue

MS = "Device.ManagementServer."
CR = Credentials("cr-user", "cr-pass")
STUN = Credentials("stun-user", "stun-pass")
OFFER = StunOffer("acs.example", 3478, 20, 60)


def fixed_plan(offer: StunOffer | None = OFFER) -> Provisioning:
    plan = provisioning_for(
        CrPolicy.FIXED, "Device.", CR, offer, None, new_credentials=lambda: STUN
    )
    assert plan is not None
    assert plan.first() == GetParameterValues([MS])
    return plan


def test_a_stun_capable_device_gets_cr_and_stun_parameters() -> None:
    plan = fixed_plan()
    reported = [ParameterValueStruct(f"{MS}STUNEnable", "0", "xsd:boolean")]
    write = plan.on_response(GetParameterValuesResponse(reported))
    assert write == SetParameterValues(
        [
            ParameterValueStruct(f"{MS}ConnectionRequestUsername", "cr-user"),
            ParameterValueStruct(f"{MS}ConnectionRequestPassword", "cr-pass"),
            ParameterValueStruct(f"{MS}STUNEnable", "1", "xsd:boolean"),
            ParameterValueStruct(f"{MS}STUNServerAddress", "acs.example"),
            ParameterValueStruct(f"{MS}STUNServerPort", "3478", "xsd:unsignedInt"),
            ParameterValueStruct(f"{MS}STUNUsername", "stun-user"),
            ParameterValueStruct(f"{MS}STUNPassword", "stun-pass"),
            ParameterValueStruct(f"{MS}STUNMinimumKeepAlivePeriod", "20", "xsd:unsignedInt"),
            ParameterValueStruct(f"{MS}STUNMaximumKeepAlivePeriod", "60", "xsd:int"),
        ]
    )
    assert plan.on_response(SetParameterValuesResponse(0)) == Provisioned(
        CR, STUN, [ParamValue(f"{MS}STUNEnable", "0", "xsd:boolean")]
    )


def test_a_device_without_stun_or_partial_paths_gets_cr_only() -> None:
    for reply in (GetParameterValuesResponse([]), cpe_fault(9005, "no partial paths")):
        plan = fixed_plan()
        write = plan.on_response(reply)
        assert isinstance(write, SetParameterValues) and len(write.parameter_list) == 2
        assert plan.on_response(SetParameterValuesResponse(0)) == Provisioned(CR, None, [])


def test_no_stun_offer_means_no_stun_parameters() -> None:
    plan = fixed_plan(offer=None)
    reported = [ParameterValueStruct(f"{MS}STUNEnable", "0", "xsd:boolean")]
    write = plan.on_response(GetParameterValuesResponse(reported))
    assert isinstance(write, SetParameterValues) and len(write.parameter_list) == 2


def test_a_refused_set_provisions_nothing() -> None:
    plan = fixed_plan()
    plan.on_response(GetParameterValuesResponse([]))
    assert plan.on_response(cpe_fault(9008, "read-only")) == Provisioned(None, None, [])


def test_policies_and_roots() -> None:
    assert provisioning_for(CrPolicy.OFF, "Device.", CR, OFFER, None) is None
    random_plan = provisioning_for(CrPolicy.RANDOM, "InternetGatewayDevice.", CR, None, None)
    assert random_plan is not None
    assert random_plan.first() == GetParameterValues(["InternetGatewayDevice.ManagementServer."])
    assert data_model_root(["InternetGatewayDevice.DeviceInfo.UpTime"]) == "InternetGatewayDevice."
    assert data_model_root(["Device.DeviceInfo.UpTime"]) == "Device."
    assert "cr-pass" not in repr(CR)


def test_usernames_knock_makes_need_no_stun_padding() -> None:
    """RFC 3489 pads USERNAME to a multiple of 4 with a byte it does not name: a username of
    that length is sent as it is, whatever byte the CPE would pad with."""
    for _ in range(20):
        username = random_credentials().username
        assert len(username.encode()) % 4 == 0 and username.startswith("knock-")


XMPP = XmppOffer("acs@knock.lab", XmppAccountOffer("knock.lab", "acs.example", 5222, False))
DEVICE_XMPP = Credentials("cpe-user", "cpe-xmpp-pw")


def test_an_xmpp_capable_device_gets_a_connection_and_server_row_and_the_allowed_jid() -> None:
    plan = provisioning_for(
        CrPolicy.FIXED, "Device.", CR, None, XMPP, new_credentials=lambda: DEVICE_XMPP
    )
    assert plan is not None
    plan.first()
    reported = [ParameterValueStruct(f"{MS}ConnReqXMPPConnection", "")]
    assert plan.on_response(GetParameterValuesResponse(reported)) == AddObject(
        "Device.XMPP.Connection."
    )
    assert plan.on_response(AddObjectResponse(2, 0)) == AddObject(
        "Device.XMPP.Connection.2.Server."
    )
    write = plan.on_response(AddObjectResponse(1, 0))
    assert isinstance(write, SetParameterValues)
    conn = "Device.XMPP.Connection.2."
    assert write.parameter_list[2:] == [
        ParameterValueStruct(f"{conn}Enable", "1", "xsd:boolean"),
        ParameterValueStruct(f"{conn}Username", "cpe-user"),
        ParameterValueStruct(f"{conn}Password", "cpe-xmpp-pw"),
        ParameterValueStruct(f"{conn}Domain", "knock.lab"),
        ParameterValueStruct(f"{conn}Resource", "cwmp"),
        ParameterValueStruct(f"{conn}UseTLS", "0", "xsd:boolean"),
        ParameterValueStruct(f"{conn}ServerConnectAlgorithm", "ServerTable"),
        ParameterValueStruct(f"{conn}Server.1.Enable", "1", "xsd:boolean"),
        ParameterValueStruct(f"{conn}Server.1.ServerAddress", "acs.example"),
        ParameterValueStruct(f"{conn}Server.1.Port", "5222", "xsd:unsignedInt"),
        ParameterValueStruct(f"{MS}ConnReqXMPPConnection", "Device.XMPP.Connection.2"),
        ParameterValueStruct(f"{MS}ConnReqAllowedJabberIDs", "acs@knock.lab"),
    ]
    done = plan.on_response(SetParameterValuesResponse(0))
    assert isinstance(done, Provisioned) and done.xmpp == DEVICE_XMPP


def test_a_device_refusing_the_xmpp_rows_still_gets_its_cr_credentials() -> None:
    plan = provisioning_for(CrPolicy.FIXED, "Device.", CR, None, XMPP)
    assert plan is not None
    plan.first()
    plan.on_response(
        GetParameterValuesResponse([ParameterValueStruct(f"{MS}ConnReqXMPPConnection", "")])
    )
    write = plan.on_response(cpe_fault(9004, "no more rows"))
    assert isinstance(write, SetParameterValues) and len(write.parameter_list) == 2
    done = plan.on_response(SetParameterValuesResponse(0))
    assert isinstance(done, Provisioned) and done.xmpp is None and done.cr == CR


def test_with_an_external_server_only_the_acs_jid_is_allowed() -> None:
    # Accounts on Prosody or ejabberd are the operator's: no rows are added, no account made.
    plan = provisioning_for(CrPolicy.FIXED, "Device.", CR, None, XmppOffer("acs@xmpp.example"))
    assert plan is not None
    plan.first()
    reported = [
        ParameterValueStruct(f"{MS}ConnReqXMPPConnection", "Device.XMPP.Connection.1"),
        ParameterValueStruct(f"{MS}ConnReqAllowedJabberIDs", ""),
    ]
    write = plan.on_response(GetParameterValuesResponse(reported))
    assert isinstance(write, SetParameterValues)
    assert write.parameter_list[2:] == [
        ParameterValueStruct(f"{MS}ConnReqAllowedJabberIDs", "acs@xmpp.example")
    ]
    done = plan.on_response(SetParameterValuesResponse(0))
    assert isinstance(done, Provisioned) and done.xmpp is None and done.cr == CR


def test_with_an_external_server_a_device_naming_no_connection_gets_its_enabled_row() -> None:
    plan = provisioning_for(CrPolicy.FIXED, "Device.", CR, None, XmppOffer("acs@xmpp.example"))
    assert plan is not None
    plan.first()
    reported = [
        ParameterValueStruct(f"{MS}ConnReqXMPPConnection", ""),
        ParameterValueStruct(f"{MS}ConnReqAllowedJabberIDs", ""),
    ]
    read = plan.on_response(GetParameterValuesResponse(reported))
    assert read == GetParameterValues(["Device.XMPP.Connection."])
    rows = [
        ParameterValueStruct("Device.XMPP.Connection.1.Enable", "false", "xsd:boolean"),
        ParameterValueStruct("Device.XMPP.Connection.3.Enable", "true", "xsd:boolean"),
        ParameterValueStruct("Device.XMPP.Connection.3.Server.1.Enable", "true", "xsd:boolean"),
        ParameterValueStruct("Device.XMPP.Connection.12.Enable", "1", "xsd:boolean"),
    ]
    write = plan.on_response(GetParameterValuesResponse(rows))
    assert isinstance(write, SetParameterValues)
    assert write.parameter_list[2:] == [
        ParameterValueStruct(f"{MS}ConnReqXMPPConnection", "Device.XMPP.Connection.3"),
        ParameterValueStruct(f"{MS}ConnReqAllowedJabberIDs", "acs@xmpp.example"),
    ]
