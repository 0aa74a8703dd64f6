"""scripts/stacklib/buildlog.py: a failed classic-builder log becomes one plain line naming the
step, its Dockerfile line and the tool's own error, plus the images the build made."""

from __future__ import annotations

from scripts.stacklib.buildlog import explain, failed_container, instruction_lines, is_build_log

DOCKERFILE = """\
# syntax comment
ARG BASE_IMAGE=base

FROM ${BASE_IMAGE} AS build
RUN one \\
    # a comment inside the instruction
    && two
COPY a /a
RUN pip install -r /a
"""

FAILED = (
    "Sending build context to Docker daemon  1.2MB\r\n"
    "Step 1/5 : ARG BASE_IMAGE=base\n"
    "Step 2/5 : FROM ${BASE_IMAGE} AS build\n"
    " ---> 1111111111aa\n"
    "Step 3/5 : RUN one     && two\n"
    " ---> Using cache\n"
    " ---> 2222222222bb\n"
    "Step 4/5 : COPY a /a\n"
    " ---> 3333333333cc\n"
    "Step 5/5 : RUN pip install -r /a\n"
    " ---> Running in 4444444444dd\n"
    "\x1b[91mERROR: Could not find a version that satisfies the requirement x==1\n"
    "\x1b[0m\x1b[91mERROR: No matching distribution found for x==1\n"
    "\x1b[0mThe command '/bin/sh -c pip install -r /a' returned a non-zero code: 1\n"
)


def test_instruction_lines_skip_comments_blank_lines_and_continuations() -> None:
    assert instruction_lines(DOCKERFILE) == [2, 4, 5, 8, 9]


def test_a_failed_run_is_named_by_step_and_line_with_the_last_error_and_exit_code() -> None:
    reason, made = explain(FAILED, DOCKERFILE)
    assert reason == (
        "step 5/5 (Dockerfile line 9, RUN) failed: "
        "ERROR: No matching distribution found for x==1 (exit 1)"
    )
    assert "\x1b" not in reason
    # Newest first; the cached step's image was there before and stays.
    assert made == ["3333333333cc", "1111111111aa"]


def test_without_the_dockerfile_the_step_is_still_named() -> None:
    assert explain(FAILED, "")[0].startswith("step 5/5 (RUN) failed: ERROR: No matching")


def test_a_step_without_an_error_line_reports_its_last_output_line() -> None:
    log = "Step 1/1 : FROM nowhere\npull access denied for nowhere, repository does not exist\n"
    assert explain(log, "FROM nowhere\n")[0] == (
        "step 1/1 (Dockerfile line 1, FROM) failed: "
        "pull access denied for nowhere, repository does not exist"
    )


def test_only_builder_output_counts_as_a_build_log() -> None:
    assert is_build_log(FAILED)
    assert not is_build_log("Error response from daemon: port is already allocated")


def test_the_failed_steps_container_is_found_and_finished_steps_are_not() -> None:
    assert failed_container(FAILED) == "4444444444dd"
    finished = "Step 1/1 : RUN true\n ---> Running in 5555555555ee\n ---> 6666666666ff\n"
    assert failed_container(finished) is None
