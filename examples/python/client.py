"""The sessions API from Python with grpcio, end to end.

Generate the stubs first (from the repository):
    npx buf generate --template buf.gen.python.yaml -o examples/python
then, with the service running:
    python3 examples/python/client.py 127.0.0.1:8090
"""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "gen"))

import grpc  # noqa: E402
from google.protobuf import json_format, struct_pb2  # noqa: E402
from sessions.v1 import sessions_pb2 as pb, sessions_pb2_grpc as rpc  # noqa: E402


def json_value(value):
    """Plain JSON as the google.protobuf.Value that user and data take."""
    return json_format.ParseDict(value, struct_pb2.Value())


address = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:8090"
with grpc.insecure_channel(address) as channel:
    sessions = rpc.SessionsServiceStub(channel)
    deadline = 3  # seconds, for each call

    opened = sessions.OpenSession(
        pb.OpenSessionRequest(user_id="123", client="web", data=json_value({"theme": "dark"})), timeout=deadline
    )
    print(f"opened {opened.session.id} for {opened.session.user_id}")

    # What a gateway does on every request: the token proves the session.
    valid = sessions.ValidateSession(pb.ValidateSessionRequest(token=opened.token, client="web"), timeout=deadline)
    print(f"validated {valid.session.id}")

    stored = sessions.StoreSessionData(
        pb.StoreSessionDataRequest(id=opened.session.id, data=json_value({"theme": "light"}), expected_version=1),
        timeout=deadline,
    )
    data = json.dumps(json_format.MessageToDict(stored.session.data), separators=(",", ":"))
    print(f"stored {data}, version {stored.session.version}")

    page = sessions.GetSessions(
        pb.GetSessionsRequest(filter=pb.SessionFilter(user_id="123", active=True), total=True), timeout=deadline
    )
    print(f"listed {len(page.sessions)} of {page.total}")

    closed = sessions.CloseSession(pb.CloseSessionRequest(id=opened.session.id), timeout=deadline)
    print(f"closed: active={str(closed.session.active).lower()}")

    sessions.DeleteSessionById(pb.DeleteSessionByIdRequest(id=opened.session.id), timeout=deadline)
    print("deleted")

    # Errors are grpc.RpcError: switch on the status code. The ErrorReason travels in the
    # grpc-status-details-bin trailer; with grpcio-status installed,
    # grpc_status.rpc_status.from_call(error) reads it.
    try:
        sessions.ValidateSession(pb.ValidateSessionRequest(token=opened.token), timeout=deadline)
    except grpc.RpcError as error:
        print(f"refused: {error.code().name}")
