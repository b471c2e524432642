"""The provisioning plan alone: what is read, what is set, what is reported back."""

from __future__ import annotations

from knock.acs.provisioning import (
    KNOWN_MANAGEMENT_LEAVES,
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
    DeleteObject,
    DeleteObjectResponse,
    GetParameterNames,
    GetParameterNamesResponse,
    GetParameterValues,
    GetParameterValuesResponse,
    ParameterInfoStruct,
    ParameterValueStruct,
    SetParameterValues,
    SetParameterValuesResponse,
)
from knock.store.rows import ParamValue
from knock.vocab import Lack, XmppSetup

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
    done = plan.on_response(SetParameterValuesResponse(0))
    assert done == Provisioned(
        CR,
        STUN,
        [ParamValue(f"{MS}STUNEnable", "0", "xsd:boolean")],
        accepted=[
            # What the device holds now, passwords as it reads them back.
            ParamValue(p.name, "" if p.name.endswith("Password") else p.value, p.type)
            for p in write.parameter_list
        ],
    )
    assert isinstance(done, Provisioned)
    assert [p.value for p in done.accepted if p.path.endswith("Password")] == ["", ""]


def test_a_device_without_stun_gets_cr_only() -> None:
    plan = fixed_plan()
    write = plan.on_response(GetParameterValuesResponse([]))
    assert isinstance(write, SetParameterValues) and len(write.parameter_list) == 2
    done = plan.on_response(SetParameterValuesResponse(0))
    assert isinstance(done, Provisioned) and (done.cr, done.stun, done.seen) == (CR, None, [])
    assert plan.found_lacking == set()


STUN_ENABLE = ParameterValueStruct(f"{MS}STUNEnable", "0", "xsd:boolean")


def test_a_device_faulting_on_partial_paths_is_read_by_the_leaf_names_it_lists() -> None:
    plan = fixed_plan()
    assert plan.probing is Lack.PARTIAL_PATH_VALUES
    names = plan.on_response(cpe_fault(9005, "no partial paths"))
    assert names == GetParameterNames(MS, next_level=False)
    assert (plan.probing, plan.found_lacking) == (
        Lack.PARTIAL_PATH_NAMES,
        {Lack.PARTIAL_PATH_VALUES},
    )
    listed = [
        ParameterInfoStruct(f"{MS}STUNEnable", True),
        ParameterInfoStruct(f"{MS}ManageableDevice.", False),
        ParameterInfoStruct(f"{MS}URL", True),
    ]
    read = plan.on_response(GetParameterNamesResponse(listed))
    assert read == GetParameterValues([f"{MS}STUNEnable", f"{MS}URL"])
    assert plan.probing is None
    write = plan.on_response(GetParameterValuesResponse([STUN_ENABLE]))
    assert isinstance(write, SetParameterValues) and len(write.parameter_list) == 9  # STUN too
    done = plan.on_response(SetParameterValuesResponse(0))
    assert isinstance(done, Provisioned)
    assert (done.cr, done.stun, done.seen) == (
        CR,
        STUN,
        [ParamValue(f"{MS}STUNEnable", "0", "xsd:boolean")],
    )


def test_a_device_known_to_lack_partial_paths_is_asked_known_names_one_at_a_time() -> None:
    lacks = frozenset({Lack.PARTIAL_PATH_VALUES, Lack.PARTIAL_PATH_NAMES})
    plan = provisioning_for(
        CrPolicy.FIXED, "Device.", CR, OFFER, None, new_credentials=lambda: STUN, lacks=lacks
    )
    assert plan is not None
    asked = [plan.first()]
    while isinstance(asked[-1], GetParameterValues):
        [name] = asked[-1].parameter_names
        reply = (
            GetParameterValuesResponse([STUN_ENABLE])
            if name == STUN_ENABLE.name
            else cpe_fault(9005, f"{name} does not exist")
        )
        asked.append(plan.on_response(reply))
    assert [a.parameter_names[0] for a in asked[:-1]] == [  # type: ignore[union-attr]
        MS + leaf for leaf in KNOWN_MANAGEMENT_LEAVES
    ]
    write = asked[-1]
    assert isinstance(write, SetParameterValues) and len(write.parameter_list) == 9
    assert plan.found_lacking == set()  # nothing new


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


CONN = "Device.XMPP.Connection."


def xmpp_plan(reference: str = "") -> Provisioning:
    """A plan past its read of a device whose ConnReqXMPPConnection is *reference*: it lists
    the device's Connection rows."""
    plan = provisioning_for(
        CrPolicy.FIXED, "Device.", CR, None, XMPP, new_credentials=lambda: DEVICE_XMPP
    )
    assert plan is not None
    plan.first()
    reported = [ParameterValueStruct(f"{MS}ConnReqXMPPConnection", reference)]
    assert plan.on_response(GetParameterValuesResponse(reported)) == GetParameterNames(CONN, True)
    return plan


def names(*rows: str) -> GetParameterNamesResponse:
    return GetParameterNamesResponse([ParameterInfoStruct(row, False) for row in rows])


def xmpp_values(conn: str, server: str) -> list[ParameterValueStruct]:
    return [
        ParameterValueStruct(f"{conn}Enable", "1", "xsd:boolean"),
        ParameterValueStruct(f"{conn}Username", "cpe-user"),
        ParameterValueStruct(f"{conn}Password", "cpe-xmpp-pw"),
        ParameterValueStruct(f"{conn}Domain", "knock.lab"),
        ParameterValueStruct(f"{conn}Resource", "cwmp"),
        ParameterValueStruct(f"{conn}UseTLS", "0", "xsd:boolean"),
        ParameterValueStruct(f"{conn}ServerConnectAlgorithm", "ServerTable"),
        ParameterValueStruct(f"{server}Enable", "1", "xsd:boolean"),
        ParameterValueStruct(f"{server}ServerAddress", "acs.example"),
        ParameterValueStruct(f"{server}Port", "5222", "xsd:unsignedInt"),
        ParameterValueStruct(f"{MS}ConnReqXMPPConnection", conn.removesuffix(".")),
        ParameterValueStruct(f"{MS}ConnReqAllowedJabberIDs", "acs@knock.lab"),
    ]


def test_a_device_without_rows_gets_a_connection_and_server_row_and_the_allowed_jid() -> None:
    plan = xmpp_plan()
    assert plan.on_response(names()) == AddObject(CONN)
    # The new row is read back before a Server row is added to it.
    assert plan.on_response(AddObjectResponse(2, 0)) == GetParameterNames(f"{CONN}2.Server.", True)
    assert plan.on_response(names()) == AddObject(f"{CONN}2.Server.")
    write = plan.on_response(AddObjectResponse(1, 0))
    assert isinstance(write, SetParameterValues)
    assert write.parameter_list[2:] == xmpp_values(f"{CONN}2.", f"{CONN}2.Server.1.")
    done = plan.on_response(SetParameterValuesResponse(1))
    assert isinstance(done, Provisioned) and done.xmpp == DEVICE_XMPP
    assert (done.xmpp_setup, done.xmpp_detail) == (XmppSetup.OK, f"{CONN}2.")
    assert done.accepted[:2] == [
        ParamValue(f"{CONN}2.", None, None),
        ParamValue(f"{CONN}2.Server.1.", None, None),
    ]
    assert ParamValue(f"{CONN}2.Password", "", "xsd:string") in done.accepted


def test_fixed_rows_are_filled_and_nothing_is_added() -> None:
    """Many CPEs ship one Connection.1 with its Server.1 and refuse AddObject."""
    plan = xmpp_plan()
    listed = names(f"{CONN}1.", f"{CONN}1.Enable")
    assert plan.on_response(listed) == GetParameterNames(f"{CONN}1.Server.", True)
    write = plan.on_response(names(f"{CONN}1.Server.1."))
    assert isinstance(write, SetParameterValues)
    assert write.parameter_list[2:] == xmpp_values(f"{CONN}1.", f"{CONN}1.Server.1.")


def test_the_row_conn_req_xmpp_connection_names_is_used_else_the_first() -> None:
    plan = xmpp_plan("Device.XMPP.Connection.3")
    rows = names(f"{CONN}1.", f"{CONN}3.", f"{CONN}12.")
    assert plan.on_response(rows) == GetParameterNames(f"{CONN}3.Server.", True)
    plan = xmpp_plan("Device.XMPP.Connection.7")  # a row the device no longer has
    assert plan.on_response(names(f"{CONN}12.", f"{CONN}3.")) == GetParameterNames(
        f"{CONN}3.Server.", True
    )


def test_a_server_row_the_device_made_with_its_connection_is_used() -> None:
    """Some stacks create a Connection's Server.1 with it and fault AddObject on Server."""
    plan = xmpp_plan()
    assert plan.on_response(names()) == AddObject(CONN)
    assert plan.on_response(AddObjectResponse(1, 0)) == GetParameterNames(f"{CONN}1.Server.", True)
    write = plan.on_response(names(f"{CONN}1.Server.1."))
    assert isinstance(write, SetParameterValues)
    assert write.parameter_list[2:] == xmpp_values(f"{CONN}1.", f"{CONN}1.Server.1.")


def test_a_refused_server_row_deletes_the_added_connection_and_sets_the_rest() -> None:
    plan = xmpp_plan()
    plan.on_response(names())
    plan.on_response(AddObjectResponse(4, 0))
    assert plan.on_response(names()) == AddObject(f"{CONN}4.Server.")
    undo = plan.on_response(cpe_fault(9005, "Invalid parameter name"))
    assert undo == DeleteObject(f"{CONN}4.")
    write = plan.on_response(DeleteObjectResponse(0))
    assert isinstance(write, SetParameterValues) and len(write.parameter_list) == 2
    done = plan.on_response(SetParameterValuesResponse(0))
    assert isinstance(done, Provisioned) and done.cr == CR and done.xmpp is None
    assert done.xmpp_setup is XmppSetup.FAILED
    assert done.xmpp_detail == (
        f"AddObject {CONN}4.Server. was answered with fault 9005 Invalid parameter name"
    )


def test_a_refused_xmpp_value_deletes_the_added_row_and_sets_the_credentials_again() -> None:
    plan = xmpp_plan()
    plan.on_response(names(f"{CONN}1."))
    assert plan.on_response(names()) == AddObject(f"{CONN}1.Server.")
    first = plan.on_response(AddObjectResponse(2, 0))
    assert isinstance(first, SetParameterValues) and len(first.parameter_list) == 14
    # The Connection was the device's own: only the Server row this provisioning added goes.
    assert plan.on_response(cpe_fault(9007, "Invalid parameter value")) == DeleteObject(
        f"{CONN}1.Server.2."
    )
    again = plan.on_response(cpe_fault(9001, "Request denied"))
    assert (
        isinstance(again, SetParameterValues) and again.parameter_list == first.parameter_list[:2]
    )
    done = plan.on_response(SetParameterValuesResponse(0))
    assert isinstance(done, Provisioned) and done.cr == CR and done.xmpp is None
    assert done.xmpp_detail == (
        "SetParameterValues was answered with fault 9007 Invalid parameter value; "
        f"deleting {CONN}1.Server.2. failed too"
    )


def test_a_device_refusing_the_xmpp_rows_still_gets_its_cr_credentials() -> None:
    plan = xmpp_plan()
    plan.on_response(names())
    write = plan.on_response(cpe_fault(9004, "no more rows"))
    assert isinstance(write, SetParameterValues) and len(write.parameter_list) == 2
    done = plan.on_response(SetParameterValuesResponse(0))
    assert isinstance(done, Provisioned) and done.xmpp is None and done.cr == CR
    assert done.xmpp_detail == f"AddObject {CONN} was answered with fault 9004 no more rows"


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


def test_a_device_lacking_partial_paths_has_its_enabled_xmpp_row_found_by_names() -> None:
    plan = provisioning_for(
        CrPolicy.FIXED,
        "Device.",
        CR,
        None,
        XmppOffer("acs@xmpp.example"),
        lacks=frozenset({Lack.PARTIAL_PATH_VALUES}),
    )
    assert plan is not None
    assert plan.first() == GetParameterNames(MS, next_level=False)
    leaves = [f"{MS}ConnReqXMPPConnection", f"{MS}ConnReqAllowedJabberIDs"]
    listed = [ParameterInfoStruct(name, True) for name in leaves]
    assert plan.on_response(GetParameterNamesResponse(listed)) == GetParameterValues(leaves)
    reported = [ParameterValueStruct(name, "") for name in leaves]
    table = "Device.XMPP.Connection."
    assert plan.on_response(GetParameterValuesResponse(reported)) == GetParameterNames(
        table, next_level=False
    )
    listed = [
        ParameterInfoStruct(f"{table}2.", False),
        ParameterInfoStruct(f"{table}2.Enable", True),
        ParameterInfoStruct(f"{table}2.Domain", True),
    ]
    assert plan.on_response(GetParameterNamesResponse(listed)) == GetParameterValues(
        [f"{table}2.Enable"]
    )
    rows = [ParameterValueStruct(f"{table}2.Enable", "true", "xsd:boolean")]
    write = plan.on_response(GetParameterValuesResponse(rows))
    assert isinstance(write, SetParameterValues)
    assert write.parameter_list[2:] == [
        ParameterValueStruct(f"{MS}ConnReqXMPPConnection", "Device.XMPP.Connection.2"),
        ParameterValueStruct(f"{MS}ConnReqAllowedJabberIDs", "acs@xmpp.example"),
    ]
