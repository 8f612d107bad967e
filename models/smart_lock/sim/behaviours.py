"""Behaviour of the smart lock in the simulator (`ksm simulate models/smart_lock`).

A day in the life of the lock, with every process written as the C programs would
be, against their generated proxies:

* the network agent forwards two remote commands to the parser: a well-formed
  UNLOCK, and an injection attempt the policy's regular expression refuses;
* the parser asks the controller to unlock; the controller checks the PIN with the
  key store and logs through the logger, which appends to storage;
* the keypad UI hashes a PIN through the crypto service and locks the door;
* both sensors report readings; the updater verifies and installs firmware;
* the key store publishes its service at run time, and the untrusted network
  agent, which knows the name, connects and asks for a key: the connection
  manager lets it connect, the policy denies the request (rcSecurityDisallow).

Run the same module against models/smart_lock_flawed with --taint to watch the
flawed policy let network data reach the key store.
"""
import hashlib

from ksm.sim import Behaviour, IpcError, ServerError

PIN = "123456"
PIN_HASH = list(hashlib.sha256(PIN.encode()).digest())
SIGNING_KEY = list(hashlib.sha256(b"firmware signing key").digest())
STATE = {"locked": 0, "unlocked": 1, "jammed": 2}


class KeyStore(Behaviour):
    process_class = "lock.KeyStore"

    def main(self):
        self.publish("keystore", "vault.secrets")

    def VerifyPin(self, pin):
        return 1 if pin["hash"] == PIN_HASH else 0

    def GetKey(self, keyId):
        if not 0x100 <= keyId < 0x200:
            raise ServerError(rc=-2)                  # no such key
        return SIGNING_KEY


class Storage(Behaviour):
    process_class = "lock.Storage"

    def __init__(self, kernel, task):
        super().__init__(kernel, task)
        self.files = {}

    def Open(self, name, mode):
        self.files.setdefault(name, b"")
        return {"handle": 40 + len(self.files), "rights": 1 if mode == 0 else 2}

    def Append(self, name, data):
        self.files[name] = self.files.get(name, b"") + data
        return len(data)

    def Install(self, image, data):
        self.files["firmware"] = data


class Logger(Behaviour):
    process_class = "lock.Logger"

    def Write(self, level, text):
        storage = self.proxy("storage_channel")
        storage.Append(name="lock.log", data=f"<{level}> {text}\n".encode())

    def WriteBatch(self, batch):
        for record in batch:
            self.Write(record["level"], f"{record['source']}: {record['text']}")


class Controller(Behaviour):
    process_class = "lock.Controller"

    def __init__(self, kernel, task):
        super().__init__(kernel, task)
        self.state = "locked"

    def _log(self, text):
        self.proxy("log_channel").Write(level=6, text=text)

    def Unlock(self, cmd, cred):
        if "pinHash" in cred:
            keys = self.proxy("keystore_channel")
            if not keys.VerifyPin(pin={"hash": cred["pinHash"], "attempt": 0})["ok"]:
                raise ServerError(rc=-13)
        self.state = "unlocked"
        self._log(f"unlocked by {cmd['origin']}")
        return STATE[self.state]

    def Lock(self, cmd):
        self.state = "locked"
        self._log(f"locked by {cmd['origin']}")
        return STATE[self.state]

    def Status(self):
        return STATE[self.state]

    def Reset(self, cmd):
        self.state = "locked"
        return STATE[self.state]

    def Report(self, batch):
        self._log(f"{len(batch)} reading(s) from sensor {batch[0]['sensorId']}")

    def Alarm(self, sensorId, severity):
        self.state = "jammed"

    def Enroll(self, tokenId, owner):
        pass

    def Revoke(self, tokenId):
        pass


class Parser(Behaviour):
    process_class = "lock.Parser"

    def Submit(self, text, nonce):
        verb = text.split()[0]
        door = self.proxy("door_channel", "core.door.control")
        cmd = {"code": 2, "nonce": nonce, "origin": "net"}
        if verb == "UNLOCK":
            door.Unlock(cmd=cmd, cred={"pinHash": PIN_HASH})
        elif verb == "LOCK":
            door.Lock(cmd=cmd)
        self.proxy("log_channel").Write(level=6, text=f"command {text!r} (nonce {nonce})")
        return 1


class NetAgent(Behaviour):
    process_class = "lock.NetAgent"

    def main(self):
        intake = self.proxy("intake_channel")
        log = self.proxy("log_channel")
        for text, nonce in (("UNLOCK 1234", 7), ("UNLOCK; reboot", 8)):
            try:
                self.log(f"remote {text!r} -> {intake.Submit(text=text, nonce=nonce)}")
            except IpcError as exc:
                self.log(f"remote {text!r} refused: {exc.rc.sdk_name}")
                log.Write(level=4, text=f"refused remote command {text!r}")
        # The agent knows the key store's service name; try it once it is published.
        for _ in range(1000):
            try:
                vault = self.connect("keystore", "vault.secrets")
                break
            except IpcError:
                self.kernel.pause()
        else:
            return
        try:
            vault.VerifyPin(pin={"hash": PIN_HASH, "attempt": 0})
            self.log("the key store answered the network agent")
        except IpcError as exc:
            self.log(f"key store refused the network agent: {exc.rc.sdk_name}")


class Crypto(Behaviour):
    process_class = "lock.Crypto"

    def VerifyImage(self, image):
        key = self.proxy("keystore_channel").GetKey(keyId=0x100)["key"]
        return 1 if image["signature"] == key else 0

    def HashPin(self, pin):
        return list(hashlib.sha256(pin.encode()).digest())


class Ui(Behaviour):
    process_class = "lock.Ui"

    def main(self):
        crypto = self.proxy("crypto_channel")
        door = self.proxy("door_channel", "core.door.control")
        pin_hash = crypto.HashPin(pin=PIN)["hash"]
        cmd = {"code": 1, "nonce": 1, "origin": "keypad"}
        try:
            if door.Status()["state"] == STATE["unlocked"]:      # the door policy refuses unlocking twice
                self.log(f"locked from the keypad: {door.Lock(cmd=cmd)}")
            else:
                self.log(f"unlocked from the keypad: {door.Unlock(cmd=cmd, cred={'pinHash': pin_hash})}")
        except IpcError as exc:                                  # the parser got there first
            self.log(f"the door refused the keypad: {exc.rc.sdk_name}")


class Sensor(Behaviour):
    process_class = "lock.Sensor"

    def main(self):
        feed = self.proxy("feed_channel", "feed")
        sensor_id = 1 if self.task == "doorSensor" else 2
        feed.Report(batch=[{"sensorId": sensor_id, "level": 20}, {"sensorId": sensor_id, "level": 21}])


class Updater(Behaviour):
    process_class = "lock.Updater"

    def main(self):
        image = {"version": 0x00010002, "signature": SIGNING_KEY, "vendor": "acme"}
        if self.proxy("crypto_channel").VerifyImage(image=image)["valid"]:
            self.proxy("storage_channel").Install(image=image, data=b"\x7fELF firmware")
            self.log("firmware 1.0.2 installed")
