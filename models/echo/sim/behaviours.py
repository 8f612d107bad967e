"""Behaviour of the echo solution in the simulator (`ksm simulate models/echo`).

The client pings three values the policy allows, then one it forbids
(`assert (message.value <= 1000)` in security.psl): that call fails with
rcSecurityDisallow and the server never sees it.
"""
from ksm.sim import Behaviour, IpcError


class Server(Behaviour):
    process_class = "echo.Server"

    def Ping(self, value):
        return value + 1                  # the one out-parameter, `result`


class Client(Behaviour):
    process_class = "echo.Client"

    def main(self):
        server = self.proxy("server_connection")       # endpoint pingComp.pingImpl
        for value in (1, 100, 1000):
            self.log(f"Ping({value}) -> {server.Ping(value)}")
        try:
            server.Ping(5000)
        except IpcError as exc:
            self.log(f"Ping(5000) refused: {exc.rc.sdk_name}")
