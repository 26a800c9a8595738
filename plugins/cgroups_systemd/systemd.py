"""The few systemd manager calls the driver needs, over the D-Bus system
bus with jeepney (pure Python, imported only here: only a container that
uses the systemd driver pays for it).

Each call opens its own connection: a CLI process makes one or two calls.
"""
from libcontainer.plugins.cgroups.common import CgroupError

DEST = "org.freedesktop.systemd1"
PATH = "/org/freedesktop/systemd1"
MANAGER = "org.freedesktop.systemd1.Manager"
JOB_TIMEOUT = 60.0      # PID 1 under software emulation answers slowly


class Bus:
    """One connection to systemd; errors name `where` (the cgroup path)."""

    def __init__(self, where):
        from jeepney import DBusAddress
        from jeepney.bus import get_bus
        from jeepney.io.blocking import open_dbus_connection
        self.where = where
        self.manager = DBusAddress(PATH, bus_name=DEST, interface=MANAGER)
        try:
            # authentication is slow under emulation: jeepney's default 1 s is short
            self.conn = open_dbus_connection(bus="SYSTEM", auth_timeout=JOB_TIMEOUT / 2)
        except (OSError, ValueError) as e:
            why = getattr(e, "strerror", None) or str(e)
            raise CgroupError(f"{where}: cannot reach systemd on the D-Bus system bus "
                              f"{get_bus('SYSTEM')}: {why} (is systemd running with "
                              f"D-Bus?)") from None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.conn.close()

    def call(self, method, signature, *args, what=None):
        from jeepney import DBusErrorResponse, new_method_call
        from jeepney.wrappers import unwrap_msg
        msg = new_method_call(self.manager, method, signature, args)
        try:
            return unwrap_msg(self.conn.send_and_get_reply(msg, timeout=JOB_TIMEOUT))
        except DBusErrorResponse as e:
            raise SystemdError(e.name, f"{self.where}: systemd: {what or method}: "
                                       f"{_text(e)}") from None
        except TimeoutError:
            raise CgroupError(f"{self.where}: systemd: {what or method}: no answer within "
                              f"{JOB_TIMEOUT:g} s") from None

    def run_job(self, method, signature, *args, what=None):
        """Call a method that queues a job and wait until the job is done;
        fail unless its result is "done"."""
        from jeepney import DBusErrorResponse, MatchRule, message_bus
        from jeepney.wrappers import unwrap_msg
        # signals carry systemd's unique name: match that one (any client
        # may send a signal)
        try:
            owner = unwrap_msg(self.conn.send_and_get_reply(message_bus.GetNameOwner(DEST),
                                                            timeout=JOB_TIMEOUT))[0]
        except DBusErrorResponse as e:
            raise CgroupError(f"{self.where}: systemd is not on the D-Bus system bus: "
                              f"{_text(e)}") from None
        rule = MatchRule(type="signal", sender=owner, interface=MANAGER, member="JobRemoved",
                         path=PATH)
        self.conn.send_and_get_reply(message_bus.AddMatch(rule), timeout=JOB_TIMEOUT)
        self.call("Subscribe", "")      # systemd sends job signals only to subscribers
        with self.conn.filter(rule, bufsize=256) as queue:
            job = self.call(method, signature, *args, what=what)[0]
            while True:
                try:
                    signal = self.conn.recv_until_filtered(queue, timeout=JOB_TIMEOUT)
                except TimeoutError:
                    raise CgroupError(f"{self.where}: systemd: {what or method}: the job did "
                                      f"not finish within {JOB_TIMEOUT:g} s") from None
                _id, path, unit, result = signal.body
                if path == job:
                    break
        if result != "done":
            raise CgroupError(f"{self.where}: systemd: {what or method}: job {result} "
                              f"(journalctl -u {unit} tells why)")

    # -- the calls --------------------------------------------------------------
    def start_scope(self, unit, properties):
        self.run_job("StartTransientUnit", "ssa(sv)a(sa(sv))", unit, "fail", properties, [],
                     what=f"starting {unit}")

    def set_properties(self, unit, properties):
        if properties:
            self.call("SetUnitProperties", "sba(sv)", unit, True, properties,
                      what=f"setting properties of {unit}")

    def stop(self, unit):
        """Stop the unit if it is loaded; forget its failed state."""
        try:
            self.run_job("StopUnit", "ss", unit, "replace", what=f"stopping {unit}")
        except SystemdError as e:
            if e.name != "org.freedesktop.systemd1.NoSuchUnit":
                raise
        try:
            self.call("ResetFailedUnit", "s", unit)
        except SystemdError:
            pass    # not failed, or already gone

    def exists(self, unit):
        try:
            self.call("GetUnit", "s", unit)
            return True
        except SystemdError as e:
            if e.name == "org.freedesktop.systemd1.NoSuchUnit":
                return False
            raise


class SystemdError(CgroupError):
    def __init__(self, name, message):
        super().__init__(message)
        self.name = name


def _text(e):
    data = e.data[0] if e.data and isinstance(e.data[0], str) else e.name
    return " ".join(data.split()).rstrip(".")
