"""The service API: decorators, the method registry built at start, readiness checks, tokens."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from service_template import (
    MicroService,
    StartupError,
    private_api_method,
    public_method,
    readiness_check,
)
from service_template.config import Secret, Settings


def registry(cls: type[MicroService], **settings: Any) -> dict[str, Any]:
    return cls(Settings(**settings)).build_registry()


def problems(cls: type[MicroService], **settings: Any) -> str:
    with pytest.raises(StartupError) as info:
        registry(cls, **settings)
    return str(info.value)


class Greeter(MicroService):
    name = "greeter"

    @public_method
    def say_hello(self, name: str) -> str:
        return f"hello {name}"

    @private_api_method
    def say_secret(self, name: str) -> str:
        return f"secret {name}"

    @public_method(name="users.get", timeout=2.5)
    async def get_user(self, user_id: int) -> dict[str, int]:
        return {"id": user_id}

    def helper(self) -> str:
        """Not decorated: never exposed."""
        return "helper"


# --- decorators ---------------------------------------------------------------------------------


def test_decorators_return_the_function_itself() -> None:
    def f(self: Any) -> None: ...

    assert public_method(f) is f
    assert private_api_method(f) is f
    assert public_method(name="x", timeout=1)(f) is f
    assert private_api_method(name="y")(f) is f
    assert readiness_check(f) is f


def test_decorated_methods_stay_directly_callable() -> None:
    service = Greeter(Settings())
    assert service.say_hello("world") == "hello world"
    assert service.say_secret("x") == "secret x"
    assert asyncio.run(service.get_user(7)) == {"id": 7}


def test_a_decorator_over_a_classmethod_fails_at_once() -> None:
    with pytest.raises(StartupError, match="need a function"):

        class Broken(MicroService):
            @public_method
            @classmethod
            def build(cls) -> None: ...


# --- the registry -------------------------------------------------------------------------------


def test_the_registry_holds_decorated_methods_only_bound_to_the_instance() -> None:
    service = Greeter(Settings())
    methods = service.build_registry()
    assert sorted(methods) == ["say_hello", "say_secret", "users.get"]
    assert methods["say_hello"].func("a") == "hello a"
    assert methods["say_hello"].func.__self__ is service  # type: ignore[attr-defined]


def test_private_methods_require_a_token_and_public_ones_do_not() -> None:
    methods = registry(Greeter)
    assert methods["say_secret"].requires_auth is True
    assert methods["say_hello"].requires_auth is False


def test_a_name_override_and_dotted_names_are_used_as_exposed_names() -> None:
    methods = registry(Greeter)
    assert "users.get" in methods
    assert "get_user" not in methods
    assert methods["users.get"].is_async


def test_the_decorator_timeout_is_kept_and_method_timeouts_override_it() -> None:
    assert registry(Greeter)["users.get"].timeout == 2.5
    assert registry(Greeter)["say_hello"].timeout is None
    overridden = registry(Greeter, method_timeouts={"users.get": 9.0, "say_hello": 1.0})
    assert overridden["users.get"].timeout == 9.0
    assert overridden["say_hello"].timeout == 1.0


def test_two_methods_with_the_same_exposed_name_fail_naming_both() -> None:
    class Twice(MicroService):
        @public_method
        def ping(self) -> str:
            return "a"

        @public_method(name="ping")
        def other_ping(self) -> str:
            return "b"

    message = problems(Twice)
    assert "'ping'" in message
    assert "Twice.ping" in message
    assert "Twice.other_ping" in message


@pytest.mark.parametrize("bad", ["1abc", "has space", "a..b", "trailing.", ".lead", "dash-ed"])
def test_an_invalid_method_name_fails_at_start(bad: str) -> None:
    class Named(MicroService):
        @public_method(name=bad)
        def method(self) -> None: ...

    assert f"{bad!r} is not a valid method name" in problems(Named)


def test_names_starting_with_rpc_dot_are_reserved() -> None:
    class Reserved(MicroService):
        @public_method(name="rpc.discover")
        def discover(self) -> None: ...

    assert "reserved" in problems(Reserved)


def test_a_name_that_merely_starts_with_rpc_is_allowed() -> None:
    class Fine(MicroService):
        @public_method(name="rpcx.call")
        def call(self) -> None: ...

    assert list(registry(Fine)) == ["rpcx.call"]


def test_an_empty_name_override_fails_at_start() -> None:
    class Empty(MicroService):
        @public_method(name="")
        def method(self) -> None: ...

    assert "not a valid method name" in problems(Empty)


def test_a_decorated_staticmethod_fails_at_start() -> None:
    class Static(MicroService):
        @public_method
        @staticmethod
        def util() -> None: ...

    assert "Static.util: expose instance methods" in problems(Static)


def test_a_staticmethod_wrapping_a_decorated_function_fails_at_start() -> None:
    class Static(MicroService):
        @staticmethod
        @public_method
        def util() -> None: ...

    assert "Static.util" in problems(Static)


def test_method_timeouts_naming_unknown_methods_fail_at_start() -> None:
    message = problems(Greeter, method_timeouts={"nope": 1.0, "say_hello": 1.0, "users.gett": 2})
    assert "method_timeouts names unknown methods: nope, users.gett" in message
    assert "say_hello" not in message


def test_a_non_positive_decorator_timeout_fails_at_start() -> None:
    class Zero(MicroService):
        @public_method(timeout=0)
        def method(self) -> None: ...

    assert "timeout must be positive" in problems(Zero)


def test_every_problem_is_reported_in_one_error() -> None:
    class Messy(MicroService):
        @public_method(name="bad name")
        def one(self) -> None: ...

        @public_method(name="rpc.mine")
        def two(self) -> None: ...

        @public_method
        def three(self) -> None: ...

        @public_method(name="three")
        def four(self) -> None: ...

        @public_method
        @staticmethod
        def five() -> None: ...

    message = problems(Messy, method_timeouts={"ghost": 1.0})
    lines = message.splitlines()
    assert lines[0] == "invalid service declaration:"
    for expected in ("Messy.one", "Messy.two", "Messy.four", "Messy.five", "ghost"):
        assert expected in message
    assert len(lines) == 6


# --- inheritance --------------------------------------------------------------------------------


class Base(MicroService):
    @public_method
    def ping(self) -> str:
        return "base"

    @public_method
    def version_info(self) -> str:
        return "1"

    @readiness_check
    def database(self) -> bool:
        return True


class Child(Base):
    @public_method
    def ping(self) -> str:
        return "child"

    @public_method
    def extra(self) -> str:
        return "extra"


def test_a_subclass_inherits_exposed_methods_and_its_overrides_win() -> None:
    methods = registry(Child)
    assert sorted(methods) == ["extra", "ping", "version_info"]
    assert methods["ping"].func() == "child"
    assert methods["version_info"].func() == "1"


def test_a_subclass_override_without_the_decorator_is_no_longer_exposed() -> None:
    class Hidden(Base):
        def ping(self) -> str:
            return "plain"

    assert sorted(registry(Hidden)) == ["version_info"]


def test_a_subclass_may_expose_an_inherited_method_under_a_new_name() -> None:
    class Renamed(Base):
        @public_method(name="health.ping")
        def ping(self) -> str:
            return "renamed"

    methods = registry(Renamed)
    assert "ping" not in methods
    assert methods["health.ping"].func() == "renamed"


# --- readiness checks ---------------------------------------------------------------------------


def test_readiness_checks_are_collected_from_the_class_and_its_bases() -> None:
    class Checked(Base):
        @readiness_check
        async def cache(self) -> bool:
            return True

    service = Checked(Settings())
    checks = service.readiness_checks()
    assert sorted(checks) == ["cache", "database"]
    assert checks["database"]() is True


def test_readiness_checks_added_at_run_time_are_included() -> None:
    service = Base(Settings())
    service.add_readiness_check("queue", lambda: True)
    assert sorted(service.readiness_checks()) == ["database", "queue"]


def test_a_readiness_check_is_not_an_exposed_method() -> None:
    assert "database" not in registry(Base)


# --- settings and tokens ------------------------------------------------------------------------


def test_the_configured_name_wins_over_the_class_attribute() -> None:
    assert Greeter(Settings()).service_name == "greeter"
    assert Greeter(Settings(name="renamed")).service_name == "renamed"


def test_class_defaults_are_what_configuration_may_override() -> None:
    class Placed(MicroService):
        name = "placed"
        host = "0.0.0.0"
        port = 9000

    assert Placed.class_defaults() == {
        "name": "placed",
        "host": "0.0.0.0",
        "port": 9000,
        "accessible_at": None,
    }


def test_the_default_token_check_fails_closed_without_a_configured_token() -> None:
    service = Greeter(Settings())
    assert service.api_token_is_valid("anything") is False
    assert service.api_token_is_valid("") is False


def test_the_default_token_check_accepts_only_the_configured_token() -> None:
    service = Greeter(Settings(api_token=Secret("s3cret-token")))
    assert service.api_token_is_valid("s3cret-token") is True
    assert service.api_token_is_valid("s3cret-token ") is False
    assert service.api_token_is_valid("S3CRET-TOKEN") is False
    assert service.api_token_is_valid("") is False


def test_stop_does_nothing_when_the_service_is_not_serving() -> None:
    Greeter(Settings()).stop()


def test_the_runtime_tells_the_builtin_token_check_from_an_override() -> None:
    # The built-in compare runs on the event loop; an override (which may do I/O) in the pool.
    from service_template.runtime import Runtime

    class Overrides(MicroService):
        def api_token_is_valid(self, api_token: str) -> bool:
            return api_token == "x"

    for cls, inline in ((MicroService, True), (Overrides, False)):
        runtime = Runtime(cls(Settings(metrics_enabled=False)), Settings(metrics_enabled=False))
        try:
            assert runtime.access.token_check_inline is inline, cls
        finally:
            runtime.close()
