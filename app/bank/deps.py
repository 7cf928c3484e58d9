"""The bank domain's route dependency: the question bank this process loaded."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.bank.loader import Bank
from app.deps import process_context


def get_bank(request: Request) -> Bank:
    bank: Bank = process_context(request).bank
    return bank


BankDep = Annotated[Bank, Depends(get_bank)]
