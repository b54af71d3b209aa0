"""Request and response bodies of the API (the OpenAPI schema is generated from these)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

#: Most items one response lists.
MAX_K = 100
#: Most ids in ``history`` or ``friends``.
MAX_IDS = 500
#: Longest free-text query (characters); the app checks the configured limit too.
MAX_TEXT = 4000

Reason = Literal["gnn", "text", "friends", "nearby", "popular", "history", "also_buy"]


class Explanation(BaseModel):
    """One path from the user to the item in the knowledge graph."""

    kind: str = Field(description="co_interaction, friend, entity or category")
    sentence: str
    node_ids: list[str] = Field(description="ids along the path, from the user to the item")
    labels: list[str] = Field(description="the label of each node on the path")


class RecommendedItem(BaseModel):
    item_id: str
    rank: int = Field(ge=1)
    score: float = Field(description="the ranking layer's score; comparable within one reason only")
    reason: Reason
    title: str | None = None
    categories: list[str] = Field(default_factory=list)
    distance_km: float | None = Field(None, description="set when the request gave a location")
    explanations: list[Explanation] | None = Field(
        None, description="paths from the graph (null when explain=false, the user is new, or the "
                          "item is outside the published list and no graph store is open)")


class RecommendationList(BaseModel):
    domain: str
    run_id: str = Field(description="the publication that answered")
    user_id: str | None = Field(None, description="null for a new user (POST)")
    items: list[RecommendedItem]


class SimilarItems(BaseModel):
    domain: str
    run_id: str
    item_id: str
    items: list[RecommendedItem]


class ExplanationList(BaseModel):
    domain: str
    run_id: str
    user_id: str
    item_id: str
    explanations: list[Explanation]


class SuggestedPerson(BaseModel):
    user_id: str
    rank: int = Field(ge=1)
    score: float
    reason: Literal["friends", "gnn"] = Field(
        description="friends: you share at least one friend; gnn: the model finds you alike")


class PeopleList(BaseModel):
    domain: str
    run_id: str
    user_id: str
    people: list[SuggestedPerson] = Field(description="people to follow, best first; never a current link")


class Location(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class NewUserRequest(BaseModel):
    """What a person the model has never seen tells us; at least one of the first four."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "examples": [{"text": "I like buying high-quality electronics", "k": 10}]})

    text: str | None = Field(None, max_length=MAX_TEXT, description="free text: a query or a profile")
    history: list[str] = Field(default_factory=list, max_length=MAX_IDS,
                               description="item ids the person liked; never recommended back")
    friends: list[str] = Field(default_factory=list, max_length=MAX_IDS,
                               description="ids of known users the person follows")
    location: Location | None = None
    k: int = Field(20, ge=1, le=MAX_K)
    diversity: float = Field(0.0, ge=0, le=1, description="0 keeps the ranking, 1 maximises variety")
    category: str | None = Field(None, min_length=1, max_length=200,
                                 description="keep items in this category")
    radius_km: float | None = Field(None, gt=0, le=20_100,
                                    description="keep items within this distance of location")

    @model_validator(mode="after")
    def _something_to_go_on(self) -> NewUserRequest:
        if self.text is None and not self.history and not self.friends and self.location is None:
            raise ValueError("give at least one of text, history, friends or location")
        if self.radius_km is not None and self.location is None:
            raise ValueError("radius_km needs location")
        return self


class Health(BaseModel):
    status: str
    domains: dict[str, str] = Field(default_factory=dict, description="domain → run id served")
