"""Seeded synthetic datasets for the four domains, and the bundled samples built from them.

The real datasets the project is tuned on cannot be redistributed, so the demo and the tests run
on data made here. It is made to carry the signals the pipeline depends on:

* **taste communities**: each user belongs mostly to one community; a community prefers a set
  of categories and entities (brands, people, artists, kinds of place), so interactions sampled
  from a community-biased popularity distribution give collaborative filtering a signal, and
  the same theme written into item text and user profiles gives text similarity one;
* **entity-rich text** in each domain's vocabulary (invented brands, directors, artists; real
  cities and landmarks), for the entity extractor to find;
* **cold starts**: users with only a ``profile_text`` written in their own words, and items that
  nobody interacted with;
* a **long tail** of item popularity and user activity, a friend graph with homophily (social),
  coordinates around real cities (travel), and a few reviews whose rating matches their tone.

Everything is drawn from one ``numpy.random.Generator`` seeded by :attr:`SynthConfig.seed`, and
the interaction table is built with vectorised numpy (the Python loops run over items, users and
communities, never over interactions), so a million interactions take seconds.

Example:
    >>> from quality.synth import SynthConfig, generate_dataset
    >>> generate_dataset(SynthConfig(domain="content", seed=7), Path("data/content"))  # doctest: +SKIP
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Callable, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, model_validator

from quality.contract import DOMAINS, DatasetManifest, write_dataset

log = logging.getLogger(__name__)

Domain = Literal["ecommerce", "content", "social", "travel"]

#: Where the bundled samples live, one folder per domain.
SAMPLES_DIR = Path(__file__).resolve().parent / "samples"

#: The file written next to a generated dataset so it can be reproduced.
CONFIG_FILE = "synth_config.json"


# =========================================================================== vocabulary
#
# Every name below is invented (brands, people, artists, venues) except cities, districts and
# landmarks, which are real places. Each theme is one taste community.


@dataclass(frozen=True)
class ProductType:
    """One kind of product: how its titles are written and what it is made of."""

    name: str
    category: str
    specs: tuple[str, ...]
    features: tuple[str, ...]
    materials: tuple[str, ...]
    price: tuple[float, float]


@dataclass(frozen=True)
class ProductTheme:
    """An e-commerce taste community: the brands and product types its members buy."""

    key: str
    label: str
    brands: tuple[str, ...]
    products: tuple[ProductType, ...]
    phrases: tuple[str, ...]
    uses: tuple[str, ...]


@dataclass(frozen=True)
class StoryTheme:
    """A content taste community: genres, creators, cast, franchises and topics."""

    key: str
    label: str
    genres: tuple[str, str]
    creators: tuple[str, ...]
    cast: tuple[str, ...]
    franchises: tuple[str, ...]
    topics: tuple[str, ...]
    adjectives: tuple[str, ...]
    nouns: tuple[str, ...]
    phrases: tuple[str, ...]


@dataclass(frozen=True)
class MusicTheme:
    """A social/music taste community: a scene with its artists, genres and topics."""

    key: str
    label: str
    genres: tuple[str, str]
    artists: tuple[str, ...]
    topics: tuple[str, ...]
    words: tuple[str, ...]
    phrases: tuple[str, ...]


@dataclass(frozen=True)
class City:
    """A real city with plausible centre coordinates, districts, landmarks and dishes."""

    name: str
    country: str
    lat: float
    lon: float
    districts: tuple[str, ...]
    landmarks: tuple[str, ...]
    cuisine: str
    dishes: tuple[str, ...]


@dataclass(frozen=True)
class PlaceTheme:
    """A travel taste community: the kinds of place its members check in at."""

    key: str
    label: str
    category: str
    poi_types: tuple[str, ...]
    activities: tuple[str, ...]
    phrases: tuple[str, ...]
    food: bool = False


def P(name, category, specs, features, materials, price):  # noqa: N802 - a table row, not logic
    return ProductType(name, category, tuple(specs), tuple(features), tuple(materials), price)


PRODUCT_THEMES: tuple[ProductTheme, ...] = (
    ProductTheme(
        "home_cinema", "home cinema and audio",
        ("Voltara", "Kestrel Audio", "Lumenfold", "Orrin Acoustics"),
        (
            P("television", "electronics|televisions",
              ("65-inch 4K OLED", "55-inch 4K QLED", "77-inch 8K OLED", "43-inch Full HD LED"),
              ("aluminium stand", "built-in surround sound", "voice remote", "wall-mount bracket"),
              ("brushed aluminium", "matte black steel"), (299, 3200)),
            P("soundbar", "electronics|audio",
              ("3.1-channel", "5.1-channel", "compact 2.0-channel", "7.1.2 atmospheric"),
              ("wireless subwoofer", "HDMI eARC", "night listening mode", "room calibration"),
              ("acoustic fabric", "anodised aluminium"), (149, 1200)),
            P("headphones", "electronics|audio",
              ("over-ear noise-cancelling", "open-back studio", "wireless on-ear", "closed-back reference"),
              ("40-hour battery", "memory-foam cushions", "hard carry case", "detachable cable"),
              ("protein leather", "aluminium", "walnut"), (79, 650)),
            P("projector", "electronics|projectors",
              ("4K laser", "short-throw 1080p", "portable LED"),
              ("120-inch screen", "built-in speakers", "auto keystone correction"),
              ("matte white polycarbonate", "aluminium"), (249, 2800)),
        ),
        ("high-quality electronics", "home cinema gear", "big screens and great sound",
         "audio equipment that sounds amazing", "OLED televisions and good speakers"),
        ("film nights at home", "music lovers", "a proper home theatre", "gaming and streaming"),
    ),
    ProductTheme(
        "outdoor", "outdoor and hiking",
        ("Northcairn", "Trailwick", "Ferngate Outfitters", "Alpenmoss"),
        (
            P("tent", "outdoor|tents",
              ("two-person backpacking", "four-season mountain", "family six-person", "ultralight solo"),
              ("taped seams", "double vestibule", "colour-coded poles", "storm guy lines"),
              ("ripstop nylon", "silicone-coated nylon", "recycled polyester"), (89, 780)),
            P("hiking boots", "outdoor|footwear",
              ("waterproof mid-cut", "lightweight trail", "leather mountaineering"),
              ("lugged rubber outsole", "ankle support", "breathable membrane", "heel lock lacing"),
              ("full-grain leather", "suede and mesh", "recycled nylon"), (99, 340)),
            P("backpack", "outdoor|backpacks",
              ("45-litre trekking", "28-litre daypack", "65-litre expedition"),
              ("hydration sleeve", "integrated rain cover", "hip-belt pockets", "ventilated back panel"),
              ("recycled ripstop nylon", "waxed canvas", "Cordura-style nylon"), (49, 320)),
            P("sleeping bag", "outdoor|camping",
              ("down three-season", "synthetic summer", "mummy-shaped winter"),
              ("compression sack", "draft collar", "two-way zip"),
              ("responsibly sourced duck down", "recycled polyester"), (59, 450)),
        ),
        ("outdoor gear for long hikes", "camping equipment", "tough kit for the mountains",
         "lightweight hiking gear", "waterproof boots and good tents"),
        ("multi-day treks", "wild camping", "alpine hiking", "weekend trail runs"),
    ),
    ProductTheme(
        "kitchen", "home cooking and coffee",
        ("Copperleaf", "Brasswood Kitchen", "Hearthline", "Saltmarsh & Co"),
        (
            P("frying pan", "home|cookware",
              ("28 cm", "24 cm nonstick", "30 cm deep"),
              ("oven-safe handle", "induction base", "twin pour spouts"),
              ("cast iron", "tri-ply stainless steel", "hammered copper", "carbon steel"), (25, 210)),
            P("chef's knife", "home|knives",
              ("20 cm", "Japanese-style santoku", "15 cm utility"),
              ("full tang", "magnetic sheath", "hand-honed edge"),
              ("Damascus steel", "high-carbon stainless steel", "olive wood"), (35, 290)),
            P("espresso machine", "home|coffee",
              ("dual-boiler", "compact single-boiler", "bean-to-cup", "manual lever"),
              ("steam wand", "built-in conical grinder", "PID temperature control"),
              ("stainless steel", "brushed chrome"), (189, 1900)),
            P("dutch oven", "home|cookware",
              ("5.5-litre enamelled", "round 4-litre", "oval 7-litre"),
              ("self-basting lid", "enamel interior", "wide loop handles"),
              ("enamelled cast iron", "stoneware"), (45, 360)),
        ),
        ("good kitchen tools", "cookware for serious home cooking", "great coffee gear",
         "pans and knives that last", "cast iron and copper cookware"),
        ("slow Sunday cooking", "baking bread", "the perfect espresso", "family dinners"),
    ),
    ProductTheme(
        "fitness", "running and fitness",
        ("Stridelab", "Pulsewell", "Corevia", "Tempo Forge"),
        (
            P("running shoes", "sports|footwear",
              ("carbon-plated racing", "cushioned daily trainer", "trail running", "lightweight tempo"),
              ("responsive foam midsole", "reflective heel", "wide toe box"),
              ("engineered mesh", "recycled knit"), (69, 260)),
            P("smartwatch", "electronics|wearables",
              ("GPS multisport", "AMOLED fitness", "solar-charging adventure"),
              ("heart-rate monitor", "7-day battery", "sleep tracking", "offline maps"),
              ("titanium", "silicone strap", "sapphire glass"), (129, 899)),
            P("yoga mat", "sports|yoga",
              ("6 mm", "travel 2 mm", "extra-long 4 mm"),
              ("alignment lines", "carry strap", "non-slip surface"),
              ("natural rubber", "cork", "TPE foam"), (19, 140)),
            P("dumbbells", "sports|strength",
              ("adjustable 24 kg", "hex 10 kg pair", "compact 12 kg"),
              ("quick-select dial", "knurled grip", "storage tray"),
              ("cast iron", "rubber-coated steel"), (29, 420)),
        ),
        ("running and fitness gear", "workout equipment", "gear for marathon training",
         "home gym equipment", "running shoes and GPS watches"),
        ("marathon training", "morning runs", "a home gym", "yoga practice"),
    ),
    ProductTheme(
        "home_office", "home office and computing",
        ("Quillon", "Bytewright", "Deskara", "Inkwell Labs"),
        (
            P("laptop", "electronics|computers",
              ("14-inch ultralight", "16-inch creator", "13-inch 2-in-1"),
              ("32 GB memory", "OLED display", "backlit keyboard", "all-day battery"),
              ("aluminium unibody", "magnesium alloy"), (699, 2900)),
            P("mechanical keyboard", "electronics|accessories",
              ("75% wireless", "full-size", "tenkeyless low-profile"),
              ("hot-swap switches", "PBT keycaps", "USB-C connection"),
              ("aluminium case", "walnut wrist rest"), (59, 320)),
            P("monitor", "electronics|monitors",
              ("27-inch 4K IPS", "34-inch ultrawide", "24-inch 1440p"),
              ("USB-C power delivery", "height-adjustable stand", "built-in KVM switch"),
              ("aluminium", "matte black plastic"), (169, 1100)),
            P("office chair", "home|furniture",
              ("ergonomic mesh", "high-back", "compact task"),
              ("adjustable lumbar support", "4D armrests", "synchro tilt"),
              ("breathable mesh", "recycled plastic", "solid oak"), (149, 990)),
        ),
        ("a productive home office", "computer accessories", "ergonomic desk setups",
         "tech for working from home", "mechanical keyboards and big monitors"),
        ("remote work", "programming all day", "video calls", "a tidy desk setup"),
    ),
    ProductTheme(
        "toys", "toys and family games",
        ("Pebbleton", "Mossbrick Toys", "Quirkwood", "Starling Games"),
        (
            P("building set", "toys|construction",
              ("1,200-piece castle", "500-piece space station", "starter harbour"),
              ("illustrated instruction booklet", "six minifigures", "storage box"),
              ("recycled plastic bricks", "beech wood blocks"), (19, 190)),
            P("board game", "toys|games",
              ("cooperative strategy", "family party", "two-player card"),
              ("90-minute playtime", "solo mode", "expansion slots"),
              ("linen-finish cards", "wooden tokens"), (15, 89)),
            P("jigsaw puzzle", "toys|puzzles",
              ("1000-piece panorama", "500-piece", "300-piece family"),
              ("a bonus poster", "sorting trays"),
              ("recycled cardboard", "birch plywood"), (12, 59)),
            P("plush toy", "toys|plush",
              ("giant", "pocket-size", "weighted"),
              ("machine-washable cover", "embroidered eyes"),
              ("organic cotton", "recycled polyester fill"), (9, 69)),
        ),
        ("toys and games for the kids", "board games for family nights", "creative toys",
         "puzzles and building sets", "wooden toys that last"),
        ("rainy afternoons", "family game nights", "birthday presents", "curious kids"),
    ),
    ProductTheme(
        "skincare", "skincare and beauty",
        ("Aurelune", "Saltbloom", "Petalwick", "Dewfield"),
        (
            P("face serum", "beauty|skincare",
              ("vitamin C brightening", "hyaluronic acid hydrating", "retinol night"),
              ("30 ml dropper bottle", "fragrance-free formula", "recyclable glass bottle"),
              ("niacinamide", "squalane", "green tea extract"), (14, 79)),
            P("moisturiser", "beauty|skincare",
              ("rich night", "lightweight gel", "SPF 30 day"),
              ("non-comedogenic formula", "refillable jar"),
              ("shea butter", "ceramides", "aloe vera"), (12, 65)),
            P("shampoo", "beauty|haircare",
              ("sulphate-free", "volumising", "repairing"),
              ("500 ml pump bottle", "solid bar format"),
              ("argan oil", "rosemary extract", "oat protein"), (8, 32)),
            P("cleansing balm", "beauty|skincare",
              ("melting", "gentle"), ("muslin cloth", "travel tin"),
              ("jojoba oil", "camellia oil"), (15, 45)),
        ),
        ("natural skincare", "gentle beauty products", "clean skincare routines",
         "cruelty-free beauty", "serums and moisturisers for sensitive skin"),
        ("sensitive skin", "a simple morning routine", "dry winter skin", "self-care evenings"),
    ),
    ProductTheme(
        "fashion", "timeless fashion",
        ("Marlow & Finch", "Ostrava Atelier", "Halden Row", "Juniper Lane"),
        (
            P("jacket", "fashion|outerwear",
              ("waxed cotton field", "quilted", "wool overcoat", "denim trucker"),
              ("corduroy collar", "hidden hood", "horn buttons"),
              ("waxed cotton", "merino wool", "recycled down"), (89, 480)),
            P("sneakers", "fashion|footwear",
              ("low-top court", "retro runner", "high-top canvas"),
              ("gum rubber sole", "padded collar"),
              ("suede", "canvas", "vegan leather"), (59, 220)),
            P("handbag", "fashion|bags",
              ("crossbody", "tote", "weekender"),
              ("brass hardware", "detachable strap", "inner zip pocket"),
              ("full-grain leather", "heavy canvas"), (69, 520)),
            P("shirt", "fashion|clothing",
              ("relaxed-fit", "oxford button-down", "camp-collar"),
              ("mother-of-pearl buttons", "chest pocket"),
              ("linen", "organic cotton"), (35, 140)),
        ),
        ("timeless fashion", "quality clothes that last", "leather bags and classic jackets",
         "sustainable fashion", "well-made basics"),
        ("everyday wear", "city weekends", "a capsule wardrobe", "the office"),
    ),
)

_FIRST = ("Mara", "Tobias", "Ines", "Callum", "Noor", "Silas", "Freya", "Anselm", "Leona", "Dario",
          "Yuki", "Oren", "Elodie", "Rafael", "Signe", "Amara", "Theo", "Katya", "Lucan", "Priya",
          "Jonah", "Beatriz", "Emil", "Zara", "Hugo", "Ottilie", "Kenji", "Maeve", "Idris", "Sabine")
_LAST = ("Ellison", "Renn", "Kovac", "Harrow", "Okafor", "Lindqvist", "Marchetti", "Vance", "Adeyemi",
         "Sorensen", "Castellan", "Whitlock", "Nakamura", "Ferreira", "Holloway", "Brandt", "Quaye",
         "Delacroix", "Maddox", "Iversen", "Petrakis", "Ashdown", "Moreau", "Tanaka", "Galloway",
         "Szabo", "Oyelaran", "Verhoeven", "Calloway", "Rasmussen")


def _people(k: int, n: int, offset: int) -> tuple[str, ...]:
    # Deterministic, collision-free within a theme: stepping first and last names with
    # different strides spreads the 900 combinations across the eight themes.
    return tuple(f"{_FIRST[(k * 7 + j * 3 + offset) % 30]} {_LAST[(k * 11 + j * 7 + offset * 5) % 30]}"
                 for j in range(n))


def _story(k, key, label, genres, franchises, topics, adjectives, nouns, phrases) -> StoryTheme:
    return StoryTheme(key, label, genres, _people(k, 5, 0), _people(k, 8, 13), tuple(franchises),
                      tuple(topics), tuple(adjectives), tuple(nouns), tuple(phrases))


STORY_THEMES: tuple[StoryTheme, ...] = (
    _story(0, "dark_scifi", "dark sci-fi thrillers", ("science fiction", "thriller"),
           ("Hollow Star", "Cinder Protocol"),
           ("artificial intelligence", "a failing space colony", "stolen memories", "mass surveillance",
            "a rogue android", "time loops"),
           ("Silent", "Last", "Hollow", "Broken", "Quantum", "Cold", "Dead"),
           ("Orbit", "Signal", "Horizon", "Protocol", "Machine", "Archive", "Reactor"),
           ("dark sci-fi thrillers", "dystopian science fiction", "tense stories about AI and space",
            "cerebral sci-fi with a twist")),
    _story(1, "cosy_mystery", "cosy mysteries", ("mystery", "crime"),
           ("The Marigold Inn Mysteries", "Inspector Pell"),
           ("a village secret", "a poisoned cake", "a stolen heirloom", "an amateur sleuth",
            "a locked library", "a seaside murder"),
           ("Curious", "Quiet", "Crooked", "Missing", "Last", "Golden"),
           ("Teacup", "Vicarage", "Locket", "Garden", "Lighthouse", "Bakery"),
           ("cosy mysteries", "whodunnits with a clever detective", "gentle crime stories",
            "village murder mysteries")),
    _story(2, "epic_fantasy", "epic fantasy", ("fantasy", "adventure"),
           ("Crown of Embers", "The Ashen Throne"),
           ("dragons", "a lost kingdom", "ancient magic", "a chosen heir", "a war of the gods",
            "an enchanted forest"),
           ("Ashen", "Seventh", "Iron", "Burning", "Hidden", "Shattered"),
           ("Throne", "Crown", "Dragon", "Kingdom", "Blade", "Prophecy"),
           ("epic fantasy with dragons", "sweeping fantasy sagas", "sword and sorcery adventures",
            "magic and lost kingdoms")),
    _story(3, "romcom", "romantic comedies", ("romance", "comedy"),
           ("Summer at Larkspur", "Love, Actually Maybe"),
           ("second chances", "a wedding gone wrong", "fake dating", "a summer in Italy",
            "rival bakers", "a holiday romance"),
           ("Sweet", "Accidental", "Perfect", "Little", "Lucky", "Second"),
           ("Proposal", "Wedding", "Summer", "Valentine", "Promise", "Kiss"),
           ("romantic comedies", "feel-good love stories", "funny romances with a happy ending",
            "light rom-coms")),
    _story(4, "historical", "historical dramas", ("drama", "history"),
           ("The Aldgate Chronicles", "House of Verrall"),
           ("the Napoleonic wars", "a Victorian family", "the space race", "a medieval court",
            "the Industrial Revolution", "a Roman legion"),
           ("Long", "Winter", "Iron", "Red", "Last", "Forgotten"),
           ("Empire", "Frontier", "Harvest", "Dynasty", "Crossing", "Letters"),
           ("historical dramas", "period dramas based on real events", "epic stories from history",
            "costume dramas")),
    _story(5, "nature_doc", "nature documentaries", ("documentary", "nature"),
           ("Wild Planet Diaries", "Blue Frontier"),
           ("coral reefs", "arctic wildlife", "rainforests", "bird migration", "deep-sea creatures",
            "climate change"),
           ("Wild", "Frozen", "Hidden", "Living", "Deep", "Secret"),
           ("Planet", "Ocean", "Forest", "Seasons", "Kingdom", "Wilderness"),
           ("nature documentaries", "wildlife films", "documentaries about oceans and animals",
            "science documentaries")),
    _story(6, "horror", "supernatural horror", ("horror", "supernatural"),
           ("The Hollowmere Files", "Night Parish"),
           ("a haunted lighthouse", "folk rituals", "a cursed film reel", "a possessed child",
            "an abandoned asylum", "something in the woods"),
           ("Hollow", "Black", "Whispering", "Pale", "Drowned", "Crimson"),
           ("House", "Woods", "Ritual", "Bell", "Mirror", "Cellar"),
           ("scary horror films", "supernatural horror", "creepy folk horror", "ghost stories")),
    _story(7, "family_animation", "animated family films", ("animation", "family"),
           ("Pip and the Lanterns", "Starling Street"),
           ("talking animals", "a robot friend", "a magical forest", "a brave little dragon",
            "a toy that comes alive", "friendship"),
           ("Little", "Brave", "Magic", "Tiny", "Great", "Happy"),
           ("Adventure", "Lantern", "Friends", "Island", "Robot", "Journey"),
           ("animated films for the whole family", "funny cartoons for kids",
            "heart-warming animation", "family adventure films")),
)

_ARTISTS = (
    ("The Paper Lanterns", "Wren Hollis", "Oakridge Choir", "Juniper & Ash", "Moss Haven"),
    ("Neon Harbour", "Vela Nova", "Chromatic Drift", "Midnight Arcade", "Laser Pilgrim"),
    ("The Blue Quarter Trio", "Odessa Lane", "Marcus Quill Quintet", "Velvet Hours", "Sable Horns"),
    ("Kid Meridian", "Lyric Assembly", "Southside Cipher", "MC Halcyon", "Dreadlock Oracle"),
    ("Iron Vesper", "Grave Lantern", "Thornwolf", "Obsidian Choir", "Black Tidal"),
    ("Aurelia Strings", "The Halden Ensemble", "Clara Voss", "Nordlys Chamber Orchestra", "Elias Brandt"),
    ("Sol de Cobre", "Luna Brava", "Ritmo Dorado", "Marisol Vega", "Los Faroles"),
    ("Cloudfield", "Tape Garden", "Softly Drifting", "Lumen Tides", "Quiet Atlas"),
)

MUSIC_THEMES: tuple[MusicTheme, ...] = (
    MusicTheme("indie_folk", "indie folk", ("indie folk", "acoustic"), _ARTISTS[0],
               ("rainy mornings", "small towns", "heartbreak", "old friends", "the sea"),
               ("Willow", "Harbour", "Letters", "Autumn", "Cabin", "River", "Lantern", "Meadow"),
               ("indie folk", "acoustic singer-songwriters", "gentle folk music with harmonies")),
    MusicTheme("synthwave", "synthwave", ("synthwave", "electronic"), _ARTISTS[1],
               ("night drives", "neon cities", "retro arcades", "lost love in the eighties", "outer space"),
               ("Neon", "Midnight", "Chrome", "Arcade", "Sunset", "Highway", "Pulse", "Laser"),
               ("synthwave", "retro electronic music", "eighties synth sounds")),
    MusicTheme("jazz", "jazz and soul", ("jazz", "soul"), _ARTISTS[2],
               ("late nights in the city", "smoky clubs", "lost love", "summer evenings", "freedom"),
               ("Blue", "Velvet", "Smoke", "Moonlight", "Avenue", "Quarter", "Swing", "Honey"),
               ("jazz and soul", "smooth jazz", "classic soul records", "live jazz")),
    MusicTheme("hiphop", "hip hop", ("hip hop", "rap"), _ARTISTS[3],
               ("growing up in the city", "hustle", "loyalty", "fame", "the neighbourhood"),
               ("Block", "Crown", "Concrete", "Cipher", "Gold", "Hustle", "Skyline", "Verse"),
               ("hip hop", "conscious rap", "boom-bap beats and sharp lyrics")),
    MusicTheme("metal", "heavy metal", ("metal", "rock"), _ARTISTS[4],
               ("war", "myths and legends", "the apocalypse", "rebellion", "the underworld"),
               ("Iron", "Storm", "Grave", "Thunder", "Serpent", "Blood", "Steel", "Ashes"),
               ("heavy metal", "loud guitar music", "doom and thrash metal")),
    MusicTheme("classical", "classical", ("classical", "orchestral"), _ARTISTS[5],
               ("the seasons", "the northern lights", "a lost homeland", "spring", "the ocean"),
               ("Nocturne", "Sonata", "Aurora", "Elegy", "Prelude", "Serenade", "Fugue", "Rhapsody"),
               ("classical music", "orchestral and chamber music", "piano and string quartets")),
    MusicTheme("latin", "latin pop", ("latin", "dance pop"), _ARTISTS[6],
               ("summer love", "dancing all night", "the beach", "carnival", "home"),
               ("Fuego", "Corazón", "Verano", "Baila", "Noche", "Playa", "Ritmo", "Sol"),
               ("latin pop", "reggaeton and salsa", "latin dance music")),
    MusicTheme("lofi", "lo-fi and ambient", ("lo-fi", "ambient"), _ARTISTS[7],
               ("studying late", "rain on the window", "quiet mornings", "drifting clouds", "sleep"),
               ("Drift", "Cloud", "Tape", "Window", "Rain", "Haze", "Echo", "Static"),
               ("lo-fi beats to study to", "ambient music", "chill instrumental music")),
)

CITIES: tuple[City, ...] = (
    City("Lisbon", "Portugal", 38.7223, -9.1393, ("Alfama", "Baixa", "Belém", "Bairro Alto"),
         ("Belém Tower", "São Jorge Castle", "the Tagus riverfront"), "Portuguese",
         ("grilled sardines", "pastéis de nata", "bacalhau", "ginjinha")),
    City("Barcelona", "Spain", 41.3874, 2.1686, ("Gothic Quarter", "Gràcia", "Barceloneta", "El Born"),
         ("the Sagrada Família", "Park Güell", "Montjuïc hill"), "Catalan",
         ("patatas bravas", "seafood paella", "vermouth", "crema catalana")),
    City("Kyoto", "Japan", 35.0116, 135.7681, ("Gion", "Arashiyama", "Higashiyama", "Nishiki"),
         ("Fushimi Inari shrine", "Kiyomizu-dera temple", "the Kamo River"), "Japanese",
         ("kaiseki", "matcha sweets", "tofu hot pot", "ramen")),
    City("Mexico City", "Mexico", 19.4326, -99.1332, ("Coyoacán", "Roma Norte", "Condesa", "Centro Histórico"),
         ("the Zócalo", "Chapultepec Park", "the Palacio de Bellas Artes"), "Mexican",
         ("tacos al pastor", "mole poblano", "mezcal", "churros")),
    City("Cape Town", "South Africa", -33.9249, 18.4241, ("Bo-Kaap", "Sea Point", "Woodstock", "Gardens"),
         ("Table Mountain", "the V&A Waterfront", "Lion's Head"), "South African",
         ("braai", "bobotie", "Cape Malay curry", "rooibos tea")),
    City("Edinburgh", "Scotland", 55.9533, -3.1883, ("Old Town", "Leith", "Stockbridge", "New Town"),
         ("Edinburgh Castle", "Arthur's Seat", "the Royal Mile"), "Scottish",
         ("haggis", "single malt whisky", "smoked salmon", "shortbread")),
)

PLACE_THEMES: tuple[PlaceTheme, ...] = (
    PlaceTheme("foodie", "food lovers", "food|restaurant",
               ("tasting-menu restaurant", "family-run tavern", "seafood grill", "street food stall"),
               ("a chef's tasting menu", "local wine pairings", "a cooking class"),
               ("local food", "eating where the locals eat", "street food and markets",
                "restaurants with regional cuisine"), food=True),
    PlaceTheme("culture", "museums and history", "culture|museum",
               ("history museum", "art gallery", "cathedral", "old palace"),
               ("guided tours", "a collection of old maps", "a rooftop terrace", "free entry on Sundays"),
               ("museums and history", "art galleries", "old churches and palaces",
                "learning about local history")),
    PlaceTheme("outdoors", "nature and viewpoints", "outdoors|park",
               ("viewpoint", "hiking trail", "botanical garden", "city beach"),
               ("sunset views", "a steep climb", "picnic spots", "sea swimming"),
               ("hiking and viewpoints", "parks and gardens", "being outdoors", "sunset views over the city")),
    PlaceTheme("nightlife", "nightlife", "nightlife|bar",
               ("cocktail bar", "jazz club", "rooftop bar", "craft beer pub"),
               ("live music", "late-night DJ sets", "signature cocktails", "a hidden speakeasy door"),
               ("nightlife", "cocktail bars and live music", "rooftop bars", "dancing until late")),
    PlaceTheme("family", "family days out", "family|attraction",
               ("aquarium", "science centre", "city zoo", "adventure playground"),
               ("hands-on exhibits", "a petting farm", "shows for kids", "a shark tunnel"),
               ("days out with the kids", "family attractions", "aquariums and zoos",
                "places children love")),
    PlaceTheme("wellness", "wellness and slow travel", "wellness|spa",
               ("spa", "yoga studio", "thermal baths", "tea house"),
               ("massage treatments", "sunrise yoga", "a quiet garden", "a traditional tea ceremony"),
               ("spas and wellness", "slow, relaxing trips", "yoga retreats", "quiet tea houses")),
    PlaceTheme("shopping", "markets and shopping", "shopping|market",
               ("flea market", "design boutique", "old bookshop", "covered market"),
               ("local crafts", "vintage finds", "handmade ceramics", "rare first editions"),
               ("markets and shopping", "vintage shops", "local crafts and design", "browsing bookshops")),
    PlaceTheme("food_markets", "coffee and bakeries", "food|cafe",
               ("specialty coffee bar", "bakery", "brunch café", "ice-cream parlour"),
               ("single-origin coffee", "fresh pastries", "a long weekend brunch"),
               ("coffee and bakeries", "brunch spots", "good coffee and pastries", "sweet treats"),
               food=True),
)

_PLACE_NAMES = ("Golden Anchor", "Old Lantern", "Blue Fig", "Copper Kettle", "Silver Gull", "Iron Gate",
                "Green Door", "Red Heron", "Salt & Stone", "Olive Branch", "Northern Star",
                "Painted Tile", "Quiet Harbour", "Wild Thyme", "Crooked Steeple", "Amber Lamp")

#: Default share of reviewed rows: a fair share of buyers review, few raters write anything.
REVIEW_SHARE = {"ecommerce": 0.3, "content": 0.05}

AGE_BANDS = ("18-24", "25-34", "35-44", "45-54", "55+")

THEMES: dict[str, tuple] = {
    "ecommerce": PRODUCT_THEMES,
    "content": STORY_THEMES,
    "social": MUSIC_THEMES,
    "travel": PLACE_THEMES,
}


# =========================================================================== config


class SynthConfig(BaseModel):
    """What :func:`generate_dataset` makes: domain, sizes, seed and the realism knobs."""

    model_config = ConfigDict(extra="forbid")

    domain: Domain
    """Which of the four domains to generate (its vocabulary, events and extra files)."""
    n_users: int = Field(300, ge=2)
    """Number of users, cold ones included."""
    n_items: int = Field(400, ge=2)
    """Number of items, cold ones included."""
    n_interactions: int = Field(6000, ge=1)
    """About how many interaction rows to write. E-commerce funnels and social likes make the
    count vary by a fraction of a percent; the other domains hit it exactly unless the
    catalogue is too small to hold that many distinct pairs."""
    seed: int = 42
    """Seed of the one random generator; the same config writes byte-identical files."""
    n_communities: int = Field(6, ge=1, le=8)
    """Taste communities; each uses one of the domain's eight themes."""
    cold_user_share: float = Field(0.1, ge=0, lt=1)
    """Share of users with a profile_text and no interactions."""
    cold_item_share: float = Field(0.05, ge=0, lt=1)
    """Share of items that nobody interacts with."""
    warm_profile_share: float = Field(0.5, ge=0, le=1)
    """Share of warm users (those with interactions) who also wrote a profile_text."""
    loyalty: float = Field(0.8, gt=0, lt=1)
    """Mean share of a user's interactions drawn from their own community's items; the rest
    come half from a second community they like and half from global popularity."""
    popularity_exponent: float = Field(0.9, ge=0, le=3)
    """Zipf exponent of item popularity (0: uniform; 1: classic long tail)."""
    review_share: float | None = Field(None, ge=0, le=1)
    """Share of purchases (e-commerce) or of ratings (content) that come with a review_text;
    ``None`` uses the domain's default (:data:`REVIEW_SHARE`)."""
    mean_links: float = Field(6.0, ge=0)
    """Social only: mean number of outgoing user_links per user."""
    homophily: float = Field(0.8, ge=0, le=1)
    """Social only: share of links that stay inside the user's community."""
    local_share: float = Field(0.6, ge=0, le=1)
    """Travel only: share of check-ins in the user's home city."""
    start: date = date(2022, 1, 1)
    """First day of interaction timestamps (UTC)."""
    end: date = date(2024, 12, 31)
    """Last day of interaction timestamps (UTC)."""
    fmt: Literal["csv", "parquet"] = "csv"
    """File format of the contract files."""
    name: str | None = None
    """Dataset name in dataset.yaml (default ``synthetic-<domain>-<seed>``)."""

    @model_validator(mode="after")
    def _consistent(self) -> "SynthConfig":
        if self.end <= self.start:
            raise ValueError(f"end ({self.end}) must be after start ({self.start})")
        if self.end > date.today():
            raise ValueError(f"end ({self.end}) is in the future; the gate refuses future timestamps")
        if self.start < date(1971, 1, 1):
            raise ValueError(f"start ({self.start}) must not be before 1971 (the gate refuses pre-1970 times)")
        if self.n_communities > self.n_users:
            raise ValueError(f"n_communities ({self.n_communities}) exceeds n_users ({self.n_users})")
        if self.n_warm_items < self.n_communities:
            raise ValueError(
                f"only {self.n_warm_items} items can have interactions with cold_item_share="
                f"{self.cold_item_share}; need at least one per community ({self.n_communities})")
        if self.n_warm_users < 1:
            raise ValueError(f"cold_user_share={self.cold_user_share} leaves no user with interactions")
        if self.n_interactions < self.n_warm_users:
            raise ValueError(
                f"n_interactions ({self.n_interactions}) is below the number of warm users "
                f"({self.n_warm_users}); every warm user needs at least one interaction. Lower "
                f"n_users or raise cold_user_share")
        if self.domain == "content":
            cap = self.n_warm_users * self.n_warm_items // 2
            if self.n_interactions > cap:
                raise ValueError(
                    f"content rates each (user, item) pair once: n_interactions ({self.n_interactions}) "
                    f"must be at most half of warm users x warm items ({cap})")
        return self

    @property
    def n_cold_users(self) -> int:
        return int(round(self.n_users * self.cold_user_share))

    @property
    def n_warm_users(self) -> int:
        return self.n_users - self.n_cold_users

    @property
    def n_cold_items(self) -> int:
        return int(round(self.n_items * self.cold_item_share))

    @property
    def n_warm_items(self) -> int:
        return self.n_items - self.n_cold_items

    @property
    def reviews(self) -> float:
        """The review share in effect for this domain."""
        if self.review_share is not None:
            return self.review_share
        return REVIEW_SHARE.get(self.domain, 0.0)

    @property
    def dataset_name(self) -> str:
        return self.name or f"synthetic-{self.domain}-{self.seed}"


# =========================================================================== result


@dataclass(frozen=True)
class SyntheticData:
    """Generated frames plus the ground truth that made them (never written to the folder).

    Attributes:
        config: the config that produced this.
        manifest: what goes into ``dataset.yaml``.
        users, items, interactions: the contract frames.
        user_links: the social graph (social only, else ``None``).
        user_community: community index per row of ``users``.
        item_community: the community whose theme each row of ``items`` was written in.
        community_categories: per community, the categories its theme prefers.
        community_labels: per community, the theme's human label.
        cold_user_ids, cold_item_ids: the users and items made cold on purpose.
        home_city: travel only, the city index of each user (rows of ``users``).
        item_city: travel only, the city index of each item.
        meta: counts from the run (rows written; for content, the shortfall against the request).
    """

    config: SynthConfig
    manifest: DatasetManifest
    users: pd.DataFrame
    items: pd.DataFrame
    interactions: pd.DataFrame
    user_links: pd.DataFrame | None
    user_community: np.ndarray
    item_community: np.ndarray
    community_categories: tuple[frozenset[str], ...]
    community_labels: tuple[str, ...]
    cold_user_ids: frozenset[str]
    cold_item_ids: frozenset[str]
    home_city: np.ndarray | None = None
    item_city: np.ndarray | None = None
    meta: dict = field(default_factory=dict)


# =========================================================================== small helpers


def _ids(prefix: str, n: int) -> list[str]:
    width = max(4, len(str(n - 1)))
    return [f"{prefix}{i:0{width}d}" for i in range(n)]


def _pick(seq, r) -> str:
    return seq[int(r) % len(seq)]


def _a(phrase: str) -> str:
    """The phrase with its indefinite article ("an indie folk", "a tent")."""
    return ("an " if phrase[:1].lower() in "aeiou" else "a ") + phrase


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


def _zipf(rng: np.random.Generator, n: int, exponent: float) -> np.ndarray:
    """Long-tail popularity: rank^-exponent over a random permutation of the items."""
    ranks = rng.permutation(n) + 1.0
    return ranks ** -exponent


@functools.cache
def _clock_table() -> pa.Array:
    return pa.array([f"{h:02d}:{m:02d}:{x:02d}Z" for h in range(24) for m in range(60) for x in range(60)])


def _iso(seconds: np.ndarray) -> pd.api.extensions.ExtensionArray:
    """ISO-8601 UTC strings (``2023-05-01T12:34:56Z``) from unix seconds, as an Arrow string array.

    Dates and clock times are formatted once each and joined by Arrow; formatting a million
    timestamps one by one would take seconds and a Python string per row.
    """
    days, day_of_row = np.unique(seconds // 86_400, return_inverse=True)
    dates = np.char.add(np.datetime_as_string(days.astype("datetime64[D]")), "T").tolist()
    text = pc.binary_join_element_wise(pa.array(dates).take(pa.array(day_of_row)),
                                       _clock_table().take(pa.array(seconds % 86_400)), "")
    return pd.array(text, dtype="str")


def _take(labels: list[str], idx: np.ndarray) -> pd.api.extensions.ExtensionArray:
    # Arrow-backed take keeps a million-row id column at ~10 bytes per row, not a Python str each.
    return pd.array(pa.array(labels).take(pa.array(idx)), dtype="str")


# =========================================================================== item writers
#
# Each writer returns (columns for items.csv, per-item slots the review writer can quote).
# Random choices come from one pre-drawn integer matrix, so the per-item Python work is just
# indexing and string formatting.


def _items_ecommerce(rng, comm, themes, n):
    r = rng.integers(0, 1 << 30, size=(n, 10))
    frac = rng.random(n)
    titles, descs, cats, brands, prices, slots = [], [], [], [], [], []
    for i in range(n):
        th: ProductTheme = themes[comm[i]]
        ri = r[i]
        pt: ProductType = _pick(th.products, ri[0])
        brand = _pick(th.brands, ri[1])
        spec = _pick(pt.specs, ri[2])
        feat = _pick(pt.features, ri[3])
        mat = _pick(pt.materials, ri[4])
        use = _pick(th.uses, ri[5])
        phrase = _pick(th.phrases, ri[6])
        style = ri[7] % 3
        if style == 0:
            title = f"{brand} {spec} {pt.name} with {feat}"
        elif style == 1:
            title = f"{brand} {spec} {pt.name}, {mat}"
        else:
            title = f"{brand} {pt.name} ({spec}, {mat})"
        descs.append(
            f"The {brand} {spec} {pt.name} is made of {mat} and comes with {feat}. "
            f"Built for {use}, it is a favourite with people who want {phrase}. "
            f"Part of {brand}'s {th.label} range.")
        titles.append(title)
        cats.append(pt.category)
        brands.append(brand)
        lo, hi = pt.price
        prices.append(round(float(lo * (hi / lo) ** frac[i]), 2))
        slots.append({"brand": brand, "product": pt.name, "material": mat, "feature": feat, "title": title})
    cols = {"title": titles, "description": descs, "category": cats, "brand": brands, "price": prices}
    return cols, slots


def _items_content(rng, comm, themes, n):
    r = rng.integers(0, 1 << 30, size=(n, 12))
    years = rng.integers(1975, 2025, size=n)
    titles, descs, cats, kinds, slots = [], [], [], [], []
    roman = ("II", "III", "IV", "Returns", "Rising")
    for i in range(n):
        th: StoryTheme = themes[comm[i]]
        ri = r[i]
        adj, noun = _pick(th.adjectives, ri[0]), _pick(th.nouns, ri[1])
        base = f"The {adj} {noun}" if ri[2] % 2 else f"{adj} {noun}"
        franchise = None
        if ri[3] % 5 == 0:
            franchise = _pick(th.franchises, ri[4])
            title = f"{franchise} {_pick(roman, ri[5])}: {base}"
        else:
            title = base
        creator = _pick(th.creators, ri[6])
        a1 = _pick(th.cast, ri[7])
        a2 = _pick(th.cast, ri[7] + 1 + ri[8] % (len(th.cast) - 1))
        topic = _pick(th.topics, ri[9])
        genre = th.genres[0]
        is_book = ri[10] % 10 < 3
        kind = "book" if is_book else "movie"
        series = f" Part of the {franchise} series." if franchise else ""
        if is_book:
            desc = (f"A book by {creator} about {topic}, for readers who love {th.label}. "
                    f"Genres: {genre}, {th.genres[1]}.{series}")
        else:
            desc = (f"{_cap(_a(genre))} film directed by {creator}, starring {a1} and {a2}. "
                    f"It is about {topic}; a must for fans of {th.label}.{series}")
        titles.append(title)
        descs.append(desc)
        cats.append(f"{th.genres[0]}|{th.genres[1]}")
        kinds.append(kind)
        slots.append({"title": title, "person": a1 if not is_book else creator, "creator": creator,
                      "genre": genre, "topic": topic, "work": "novel" if is_book else "film"})
    cols = {"title": titles, "description": descs, "category": cats, "kind": kinds,
            "year": years.tolist()}
    return cols, slots


def _items_social(rng, comm, themes, n):
    r = rng.integers(0, 1 << 30, size=(n, 8))
    secs = rng.integers(120, 420, size=n)
    titles, descs, cats, artists, slots = [], [], [], [], []
    for i in range(n):
        th: MusicTheme = themes[comm[i]]
        ri = r[i]
        artist = _pick(th.artists, ri[0])
        w1 = _pick(th.words, ri[1])
        w2 = _pick(th.words, ri[1] + 1 + ri[2] % (len(th.words) - 1))
        album = f"{_pick(th.words, ri[3])} {_pick(('Sessions', 'Tapes', 'Diaries', 'Nights', 'Stories'), ri[4])}"
        topic = _pick(th.topics, ri[5])
        title = f"{w1} {w2}"
        descs.append(f"{_cap(_a(th.genres[0]))} track by {artist} from the album {album}, about {topic}. "
                     f"{th.genres[1].capitalize()} influences throughout; loved by fans of {th.label}.")
        titles.append(title)
        cats.append(f"{th.genres[0]}|{th.genres[1]}")
        artists.append(artist)
        slots.append({"title": title, "artist": artist})
    cols = {"title": titles, "description": descs, "category": cats, "artist": artists,
            "duration_s": secs.tolist()}
    return cols, slots


def _items_travel(rng, comm, themes, n, item_city):
    r = rng.integers(0, 1 << 30, size=(n, 8))
    # ~2.5 km spread around the centre: places stay inside the city they are written about.
    dlat = rng.normal(0.0, 0.022, size=n)
    dlon = rng.normal(0.0, 0.022, size=n)
    titles, descs, cats, cities, lats, lons, kinds, slots = [], [], [], [], [], [], [], []
    for i in range(n):
        th: PlaceTheme = themes[comm[i]]
        city = CITIES[item_city[i]]
        ri = r[i]
        kind = _pick(th.poi_types, ri[0])
        name = _pick(_PLACE_NAMES, ri[1])
        district = _pick(city.districts, ri[2])
        landmark = _pick(city.landmarks, ri[3])
        act = _pick(th.activities, ri[4])
        if th.food:
            dish = _pick(city.dishes, ri[5])
            desc = (f"{_cap(_a(kind))} in {district}, {city.name}, serving {city.cuisine} cuisine: try the "
                    f"{dish}. Known for {act}, a short walk from {landmark}.")
        else:
            desc = (f"{_cap(_a(kind))} in {district}, {city.name}, known for {act}. A short walk from "
                    f"{landmark}; a favourite for {_pick(th.phrases, ri[6])}.")
        title = f"{name} {kind.title()}" if ri[7] % 2 else f"{name} {kind.title()}, {city.name}"
        titles.append(title)
        descs.append(desc)
        cats.append(th.category)
        cities.append(city.name)
        kinds.append(kind)
        lats.append(round(city.lat + float(dlat[i]), 6))
        lons.append(round(city.lon + float(dlon[i]), 6))
        slots.append({"title": title})
    cols = {"title": titles, "description": descs, "category": cats, "lat": lats, "lon": lons,
            "city": cities, "poi_type": kinds}
    return cols, slots


# =========================================================================== profiles

_PROFILE_TEMPLATES = {
    "ecommerce": (
        "I like buying {phrase}.",
        "I mostly shop for {phrase}; {entity} is my favourite brand.",
        "Always looking for a good {kind} for {use}. I love {phrase}.",
        "I care about {phrase} and trust brands like {entity} and {entity2}.",
        "I shop with {use} in mind, so I buy {phrase}; {material_a} {kind} is next on my list.",
    ),
    "content": (
        "I love {phrase} by {entity}.",
        "Big fan of {genre}: anything like {franchise} or stories about {topic}.",
        "My favourite films and books are {phrase}; I never miss anything by {entity}.",
        "I watch a lot of {phrase}, especially ones about {topic}.",
        "Give me {phrase} with {entity2} in it and I am happy.",
    ),
    "social": (
        "I listen to {phrase} all day, especially {entity}.",
        "Mostly {genre} for me: {entity} and {entity2} are on repeat.",
        "Songs about {topic} and {phrase} are my thing.",
        "I go to gigs for {phrase}; saw {entity} live last year.",
    ),
    "travel": (
        "I travel for {phrase}; I always look for a good {kind}.",
        "When I visit a city I want {phrase}, like a {kind} with {activity}.",
        "Into {phrase}. Last trip I loved {city} for its {kind}s.",
        "Looking for {phrase} and {activity} wherever I go.",
    ),
}


def _profiles(rng, domain: str, themes, comm: np.ndarray, cities: np.ndarray | None) -> list[str]:
    n = len(comm)
    r = rng.integers(0, 1 << 30, size=(n, 8))
    out = []
    tpls = _PROFILE_TEMPLATES[domain]
    for u in range(n):
        th = themes[comm[u]]
        ru = r[u]
        slots = {"phrase": _pick(th.phrases, ru[1])}
        if domain == "ecommerce":
            pt = _pick(th.products, ru[2])
            slots.update(entity=_pick(th.brands, ru[3]), entity2=_pick(th.brands, ru[3] + 1),
                         kind=pt.name, use=_pick(th.uses, ru[4]),
                         material_a=_a(_pick(pt.materials, ru[5])))
        elif domain == "content":
            slots.update(entity=_pick(th.creators, ru[3]), entity2=_pick(th.cast, ru[4]),
                         genre=th.genres[0], franchise=_pick(th.franchises, ru[5]),
                         topic=_pick(th.topics, ru[6]))
        elif domain == "social":
            slots.update(entity=_pick(th.artists, ru[3]), entity2=_pick(th.artists, ru[3] + 1),
                         genre=th.genres[0], topic=_pick(th.topics, ru[4]))
        else:
            slots.update(kind=_pick(th.poi_types, ru[3]), activity=_pick(th.activities, ru[4]),
                         city=CITIES[cities[u]].name)
        out.append(_cap(_pick(tpls, ru[0]).format(**slots)))
    return out


# =========================================================================== reviews

_REVIEWS = {
    "ecommerce": {
        "pos": ("Really happy with this {product}. The {material} feels solid and {brand} got the details right.",
                "Excellent {product}: works perfectly and looks great. Would buy from {brand} again.",
                "Great buy. The {feature} alone is worth it; the best {product} I have owned.",
                "Great quality for the price. {brand} has a loyal customer in me."),
        "mix": ("Decent {product} for the price, but the {material} scratches more easily than I expected.",
                "It does the job. The {feature} is nice, though delivery took ages.",
                "Okay {product}. Not as premium as other {brand} gear I own."),
        "neg": ("Disappointed. The {product} stopped working after two weeks and {brand} support never replied.",
                "Poor quality: the {material} cracked on day one. Returning this {product}.",
                "Would not recommend. The {feature} barely works and it feels cheap and flimsy for {brand}."),
    },
    "content": {
        "pos": ("A gripping {work} and a great watch; {person} is excellent. {title} kept me hooked to the end.",
                "Loved it. Beautifully made, and the story about {topic} really moved me.",
                "Wonderful! One of the best {work}s I have enjoyed in years. {creator} does it again.",
                "Brilliant and original. I would happily watch {title} again."),
        "mix": ("Some good moments, but {title} drags in the middle.",
                "Good idea, uneven execution. {person} is fine; the ending felt rushed.",
                "Watchable enough, nothing special."),
        "neg": ("Dull and far too long. A waste of time; even {person} looked bored in {title}.",
                "Terrible. I wanted to like this {work} about {topic}, but it is a confusing, boring mess.",
                "Boring and predictable. The worst thing {creator} has made."),
    },
}


def _review_texts(rng, domain: str, slots: list[dict], items: np.ndarray, ratings: np.ndarray) -> list[str]:
    bank = _REVIEWS[domain]
    r = rng.integers(0, 1 << 30, size=len(items))
    out = []
    for k in range(len(items)):
        tone = "pos" if ratings[k] >= 4 else "neg" if ratings[k] <= 2 else "mix"
        text = _pick(bank[tone], r[k]).format(**slots[items[k]])
        out.append(_cap(text))
    return out


# =========================================================================== interactions


@dataclass
class _Draws:
    """Interaction rows as parallel index arrays (no strings until the frame is built)."""

    user: np.ndarray
    item: np.ndarray
    in_comm: np.ndarray


def _item_sampler(weights: np.ndarray) -> Callable[[np.random.Generator, int], np.ndarray]:
    cdf = np.cumsum(weights, dtype=np.float64)
    total = cdf[-1]

    def draw(rng: np.random.Generator, size: int) -> np.ndarray:
        idx = np.searchsorted(cdf, rng.random(size) * total, side="right")
        return np.minimum(idx, len(cdf) - 1)

    return draw


class _Sampler:
    """Community-biased popularity: the heart of the collaborative signal.

    Each community sees its own items' popularity multiplied by community-specific noise, so two
    communities that share a category still like different items; out-of-community draws fall
    back on the user's second community or the global popularity curve.
    """

    def __init__(self, rng, cfg: SynthConfig, item_comm: np.ndarray, warm_item: np.ndarray,
                 item_city: np.ndarray | None):
        k = cfg.n_communities
        pop = _zipf(rng, cfg.n_items, cfg.popularity_exponent) * warm_item
        self.pop = pop
        self.global_draw = _item_sampler(pop)
        noise = rng.lognormal(0.0, 0.6, size=(k, cfg.n_items))
        self.comm_weights = np.where(item_comm[None, :] == np.arange(k)[:, None], pop[None, :] * noise, 0.0)
        self.comm_draw = [_item_sampler(self.comm_weights[c]) if self.comm_weights[c].sum() > 0
                          else self.global_draw for c in range(k)]
        self.item_city = item_city
        self.item_comm = item_comm
        self._city_draw: dict[tuple[int, int], Callable] = {}

    def draw_flat(self, rng, users: np.ndarray, comm: np.ndarray | None) -> _Draws:
        """Uniform over warm items, within each user's community or (``comm=None``) overall."""
        warm = np.flatnonzero(self.pop > 0)
        if comm is None:
            items = warm[rng.integers(0, warm.size, size=users.size)]
            return _Draws(users, items, np.zeros(users.size, dtype=bool))
        own = self.item_comm[warm]
        order = warm[np.argsort(own, kind="stable")]
        counts = np.bincount(own, minlength=len(self.comm_draw))
        starts = np.cumsum(counts) - counts
        c = comm[users]
        items = order[starts[c] + (rng.random(users.size) * counts[c]).astype(np.int64)]
        return _Draws(users, items, np.ones(users.size, dtype=bool))

    def city_draw(self, group: int, city: int) -> Callable:
        """Draws from one city's items, weighted as ``group`` (a community, or -1: global) likes them."""
        key = (group, city)
        if key not in self._city_draw:
            base = self.comm_weights[group] if group >= 0 else self.pop
            w = base * (self.item_city == city)
            # A city with no item of that community falls back to the community anywhere.
            self._city_draw[key] = _item_sampler(w) if w.sum() > 0 else (
                self.comm_draw[group] if group >= 0 else self.global_draw)
        return self._city_draw[key]

    def draw(self, rng, users: np.ndarray, comm: np.ndarray, second: np.ndarray, loyalty: np.ndarray,
             home_city: np.ndarray | None, local_share: float) -> _Draws:
        """One item per entry of ``users``: own community with the user's loyalty, else half
        second community and half global popularity; travel draws stay in the home city with
        probability ``local_share``. Loops run over (community, city) groups, not rows."""
        n = len(users)
        u = rng.random(n)
        lo = loyalty[users]
        # source: 0 own community, 1 second community, 2 global popularity
        source = np.where(u < lo, 0, np.where(u < lo + (1 - lo) / 2, 1, 2))
        group = np.where(source == 0, comm[users], np.where(source == 1, second[users], -1))
        items = np.empty(n, dtype=np.int64)
        if home_city is not None:
            local = rng.random(n) < local_share
            city = np.where(local, home_city[users], -1)
        else:
            city = np.full(n, -1)
        key = (group + 1) * 1000 + (city + 1)
        order = np.argsort(key, kind="stable")
        sk = key[order]
        bounds = np.flatnonzero(np.diff(sk)) + 1
        for chunk in np.split(order, bounds):
            if chunk.size == 0:
                continue
            g = int(group[chunk[0]])
            c = int(city[chunk[0]])
            if c >= 0:
                fn = self.city_draw(g, c)
            else:
                fn = self.comm_draw[g] if g >= 0 else self.global_draw
            items[chunk] = fn(rng, chunk.size)
        return _Draws(users, items, source == 0)


def _allocate(rng, n_rows: int, activity: np.ndarray) -> np.ndarray:
    """Rows per warm user: one each, the rest spread by a long-tailed activity level."""
    w = len(activity)
    extra = rng.multinomial(max(n_rows - w, 0), activity / activity.sum())
    return 1 + extra


# Event chains: each draw is the first event; the chain continues with the given probabilities.
_FUNNEL = ("view", "click", "cart", "purchase")
_FUNNEL_WEIGHT = np.array([1.0, 2.0, 3.0, 5.0])
# P(depth = 0..3) for out-of-community vs in-community draws: people buy what they like.
_FUNNEL_DEPTH = np.array([[0.62, 0.22, 0.09, 0.07], [0.45, 0.25, 0.12, 0.18]])
_SOCIAL_LIKE = np.array([0.08, 0.25])
_LIKE_WEIGHT = 5.0


def _expand(depth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row index of each base draw repeated depth+1 times, and the step number within it."""
    reps = depth + 1
    base = np.repeat(np.arange(len(depth)), reps)
    starts = np.repeat(np.cumsum(reps) - reps, reps)
    step = np.arange(len(base)) - starts
    return base, step


def _times(rng, users: np.ndarray, user_start: np.ndarray, t_end: int) -> np.ndarray:
    span = t_end - user_start[users]
    return user_start[users] + (rng.random(len(users)) * span).astype(np.int64)


def _unique_rows(*cols: np.ndarray) -> np.ndarray:
    """Mask of rows whose key columns were not seen earlier (the first occurrence is kept).

    Keys are non-negative ints; pairs are packed into one int64 where they fit, which halves
    the sorting work on a million rows.
    """
    keys = list(cols)
    if len(keys) >= 2 and int(keys[0].max(initial=0)) < 2**31 and int(keys[1].max(initial=0)) < 2**31:
        keys = [keys[0].astype(np.int64) << 31 | keys[1].astype(np.int64)] + keys[2:]
    order = np.lexsort(keys[::-1])
    dup = np.ones(len(order), dtype=bool)
    if len(order):
        dup[0] = False
    for c in keys:
        sc = c[order]
        dup[1:] &= sc[1:] == sc[:-1]
    keep = np.ones(len(order), dtype=bool)
    keep[order[dup]] = False
    return keep


# =========================================================================== generation


def synthesize(cfg: SynthConfig) -> SyntheticData:
    """Build a synthetic dataset in memory, with the ground truth that shaped it.

    Args:
        cfg: what to generate.

    Returns:
        The contract frames plus communities, cold ids and (travel) cities, for tests and demos.
    """
    rng = np.random.default_rng(cfg.seed)
    domain = cfg.domain
    themes = THEMES[domain][: cfg.n_communities]
    k = cfg.n_communities
    nu, ni = cfg.n_users, cfg.n_items

    # ---- users: community sizes vary (Dirichlet), cold users picked at random
    sizes = rng.dirichlet(np.full(k, 4.0))
    user_comm = rng.choice(k, size=nu, p=sizes)
    second = (user_comm + rng.integers(1, max(k, 2), size=nu)) % k if k > 1 else user_comm.copy()
    loyalty = np.clip(rng.beta(cfg.loyalty * 12, (1 - cfg.loyalty) * 12, size=nu), 0.05, 0.99)
    activity = rng.lognormal(0.0, 1.0, size=nu)
    cold_user = np.zeros(nu, dtype=bool)
    cold_user[rng.choice(nu, size=cfg.n_cold_users, replace=False)] = True
    user_ids = _ids("u", nu)

    # ---- items: written in one community's theme; cold items chosen at random
    item_comm = rng.permutation(np.arange(ni) % k)
    cold_item = np.zeros(ni, dtype=bool)
    cold_item[rng.choice(ni, size=cfg.n_cold_items, replace=False)] = True
    # Each community must keep a warm item to draw from: swap a cold flag onto another item.
    for c in range(k):
        members = np.flatnonzero(item_comm == c)
        if cold_item[members].all():
            cold_item[members[0]] = False
            cold_item[np.flatnonzero(~cold_item & (item_comm != c))[0]] = True
    home_city = item_city = None
    if domain == "travel":
        item_city = rng.integers(0, len(CITIES), size=ni)
        home_city = rng.integers(0, len(CITIES), size=nu)
    writers = {"ecommerce": _items_ecommerce, "content": _items_content, "social": _items_social}
    if domain == "travel":
        cols, slots = _items_travel(rng, item_comm, themes, ni, item_city)
    else:
        cols, slots = writers[domain](rng, item_comm, themes, ni)
    prefix = {"ecommerce": "p", "content": "c", "social": "t", "travel": "poi"}[domain]
    item_ids = _ids(prefix, ni)
    # A few items without a description: the contract allows it and downstream must cope.
    no_desc = rng.random(ni) < 0.03
    cols["description"] = [None if no_desc[i] else d for i, d in enumerate(cols["description"])]
    items = pd.DataFrame({"item_id": item_ids, **cols})

    # ---- users frame
    has_profile = cold_user | (rng.random(nu) < cfg.warm_profile_share)
    texts = _profiles(rng, domain, themes, user_comm, home_city)
    band_shift = rng.random(nu) < 0.45
    age = np.where(band_shift, user_comm % len(AGE_BANDS), rng.integers(0, len(AGE_BANDS), size=nu))
    users = pd.DataFrame({
        "user_id": user_ids,
        "profile_text": [t if has_profile[u] else None for u, t in enumerate(texts)],
    })
    if domain == "travel":
        users["lat"] = np.round(np.array([CITIES[c].lat for c in home_city]) + rng.normal(0, 0.05, nu), 6)
        users["lon"] = np.round(np.array([CITIES[c].lon for c in home_city]) + rng.normal(0, 0.05, nu), 6)
        users["home_city"] = [CITIES[c].name for c in home_city]
    users["age_band"] = [AGE_BANDS[a] for a in age]

    # ---- interactions
    t0 = int(pd.Timestamp(cfg.start, tz="UTC").timestamp())
    t_end = int(pd.Timestamp(cfg.end, tz="UTC").timestamp()) + 86_399
    # Users join at different times, so per-user temporal splits see different history lengths.
    user_start = t0 + (rng.random(nu) ** 2 * 0.7 * (t_end - t0)).astype(np.int64)
    sampler = _Sampler(rng, cfg, item_comm, (~cold_item).astype(float), item_city)
    warm = np.flatnonzero(~cold_user)
    cols_i, extra = _interactions(rng, cfg, sampler, warm, activity, user_comm, second, loyalty,
                                  home_city, user_start, t_end, slots)
    inter = pd.DataFrame({
        "user_id": _take(user_ids, cols_i.pop("user")),
        "item_id": _take(item_ids, cols_i.pop("item")),
        "timestamp": _iso(cols_i.pop("timestamp")),
    })
    for col in ("rating", "event", "weight", "review_text"):
        if col in cols_i:
            inter[col] = cols_i.pop(col)

    links = None
    if domain == "social":
        links = _links(rng, cfg, user_comm, user_ids, t0, t_end)

    rating_range = (1.0, 5.0) if domain in ("ecommerce", "content") else None
    manifest = DatasetManifest(
        domain=domain,
        name=cfg.dataset_name,
        notes=(f"Synthetic {domain} data from quality.synth (seed {cfg.seed}, {k} taste communities: "
               f"{', '.join(t.label for t in themes)}). Brands, people and artists are invented."),
        rating_range=rating_range,
    )
    cats = tuple(frozenset(_theme_categories(domain, t)) for t in themes)
    return SyntheticData(
        config=cfg, manifest=manifest, users=users, items=items, interactions=inter, user_links=links,
        user_community=user_comm, item_community=item_comm, community_categories=cats,
        community_labels=tuple(t.label for t in themes),
        cold_user_ids=frozenset(np.asarray(user_ids)[cold_user].tolist()),
        cold_item_ids=frozenset(np.asarray(item_ids)[cold_item].tolist()),
        home_city=home_city, item_city=item_city, meta=extra,
    )


def _theme_categories(domain: str, theme) -> set[str]:
    if domain == "ecommerce":
        return {c for p in theme.products for c in p.category.split("|")[1:]}
    if domain in ("content", "social"):
        return {theme.genres[0]}
    return {theme.category.split("|")[1]}


def _interactions(rng, cfg, sampler, warm, activity, comm, second, loyalty, home_city, user_start,
                  t_end, slots):
    domain = cfg.domain
    if domain == "ecommerce":
        mean_chain = float((_FUNNEL_DEPTH[1] * np.arange(1, 5)).sum() * cfg.loyalty
                           + (_FUNNEL_DEPTH[0] * np.arange(1, 5)).sum() * (1 - cfg.loyalty))
    elif domain == "social":
        mean_chain = 1 + float(_SOCIAL_LIKE[1] * cfg.loyalty + _SOCIAL_LIKE[0] * (1 - cfg.loyalty))
    else:
        mean_chain = 1.0
    n_base = max(len(warm), int(round(cfg.n_interactions / mean_chain)))
    per_user = _allocate(rng, n_base, activity[warm])
    users = np.repeat(warm, per_user)
    d = sampler.draw(rng, users, comm, second, loyalty, home_city, cfg.local_share)
    extra: dict = {}

    if domain == "content":
        # One rating per (user, item): drop repeats and top the deficit up in a few rounds,
        # most of which land outside the user's saturated favourites.
        target = np.bincount(users, minlength=len(comm))
        keep = _unique_rows(d.user, d.item)
        d = _Draws(d.user[keep], d.item[keep], d.in_comm[keep])
        for round_ in range(10):
            have = np.bincount(d.user, minlength=len(comm))
            deficit = np.maximum(target - have, 0)
            if deficit.sum() == 0:
                break
            who = np.repeat(np.arange(len(comm)), deficit)
            if round_ < 4:
                more = sampler.draw(rng, who, comm, second, loyalty, home_city, cfg.local_share)
            else:
                # Heavy raters have used up their community's popular head: fill from its long
                # tail first, then from anything, as real heavy users drift outside their niche.
                more = sampler.draw_flat(rng, who, comm if round_ < 6 else None)
            u = np.concatenate([d.user, more.user])
            i = np.concatenate([d.item, more.item])
            m = np.concatenate([d.in_comm, more.in_comm])
            keep = _unique_rows(u, i)
            d = _Draws(u[keep], i[keep], m[keep])
        extra["shortfall"] = int(cfg.n_interactions - len(d.user))

    n = len(d.user)
    ts = _times(rng, d.user, user_start, t_end)
    out: dict[str, np.ndarray] = {}
    if domain == "ecommerce":
        probs = _FUNNEL_DEPTH[d.in_comm.astype(int)]
        depth = (rng.random(n)[:, None] > np.cumsum(probs, axis=1)[:, :-1]).sum(axis=1)
        base, step = _expand(depth)
        # Funnel steps a few minutes apart, in order: view -> click -> cart -> purchase.
        gaps = rng.exponential(240.0, size=len(base)).astype(np.int64) + 5
        gaps[step == 0] = 0
        offset = np.cumsum(gaps) - np.repeat(np.cumsum(gaps)[np.flatnonzero(step == 0)], depth + 1)
        user, item = d.user[base], d.item[base]
        t = np.minimum(ts[base] + offset, t_end)
        in_comm = d.in_comm[base]
        out = {"event": _events(_FUNNEL, step), "weight": _FUNNEL_WEIGHT[step]}
        rating = np.full(len(base), np.nan)
        review = np.full(len(base), None, dtype=object)
        buy = np.flatnonzero(step == 3)
        rev = buy[rng.random(buy.size) < cfg.reviews]
        r = _ratings(rng, rev.size, in_comm[rev], sampler.pop, item[rev])
        rating[rev] = r
        review[rev] = _review_texts(rng, "ecommerce", slots, item[rev], r)
        out["rating"] = rating
        out["review_text"] = review
    elif domain == "social":
        like = (rng.random(n) < _SOCIAL_LIKE[d.in_comm.astype(int)]).astype(np.int64)
        base, step = _expand(like)
        user, item, in_comm = d.user[base], d.item[base], d.in_comm[base]
        plays = 1 + rng.geometric(np.where(in_comm, 0.25, 0.6))
        t = np.minimum(ts[base] + step * (60 + rng.integers(0, 600, size=len(base))), t_end)
        out = {"event": _events(("listen", "like"), step),
               "weight": np.where(step == 0, plays, _LIKE_WEIGHT).astype(float)}
    elif domain == "content":
        user, item, t, in_comm = d.user, d.item, ts, d.in_comm
        r = _ratings(rng, n, in_comm, sampler.pop, item)
        review = np.full(n, None, dtype=object)
        rev = np.flatnonzero(rng.random(n) < cfg.reviews)
        review[rev] = _review_texts(rng, "content", slots, item[rev], r[rev])
        out = {"rating": r.astype(float), "event": _events(("rate",), np.zeros(n, np.int8)),
               "review_text": review}
    else:
        user, item, t = d.user, d.item, ts
        out = {"event": _events(("checkin",), np.zeros(n, np.int8))}

    # Repeats of (user, item, second) would be refused as duplicates; rows are then ordered by
    # time (ties by user, item) so the file reads like a log and diffs stay stable.
    keep = np.flatnonzero(_unique_rows(user, item, t))
    order = keep[np.lexsort((item[keep], user[keep], t[keep]))]
    cols = {"user": user[order], "item": item[order], "timestamp": t[order]}
    for col, values in out.items():
        cols[col] = values[order]
    extra["rows"] = len(order)
    return cols, extra


def _events(names: tuple[str, ...], codes: np.ndarray) -> pd.Categorical:
    """Event names as a categorical: one byte per row instead of a string."""
    return pd.Categorical.from_codes(codes.astype(np.int8), categories=list(names))


def _ratings(rng, n: int, in_comm: np.ndarray, pop: np.ndarray, items: np.ndarray) -> np.ndarray:
    """1..5 stars: higher inside the user's community and for the popular (better) items."""
    quality = np.log(pop[items] + 1e-12)
    quality = (quality - quality.mean()) / (quality.std() + 1e-9) if n else quality
    score = 3.0 + 1.0 * in_comm + 0.35 * quality + rng.normal(0.0, 1.0, size=n)
    return np.clip(np.rint(score), 1, 5)


def _links(rng, cfg: SynthConfig, comm: np.ndarray, user_ids: list[str], t0: int, t_end: int) -> pd.DataFrame:
    """A directed friend/follow graph where most links stay inside a community (homophily)."""
    nu = len(comm)
    deg = rng.poisson(cfg.mean_links, size=nu)
    src = np.repeat(np.arange(nu), deg)
    order = np.argsort(comm, kind="stable")
    counts = np.bincount(comm, minlength=cfg.n_communities)
    starts = np.cumsum(counts) - counts
    same = rng.random(src.size) < cfg.homophily
    c = comm[src]
    within = order[starts[c] + (rng.random(src.size) * counts[c]).astype(np.int64)]
    anyone = rng.integers(0, nu, size=src.size)
    dst = np.where(same, within, anyone)
    keep = (src != dst) & _unique_rows(src, dst)
    src, dst = src[keep], dst[keep]
    kind = np.where(rng.random(src.size) < 0.65, "friend", "follow")
    ts = t0 + (rng.random(src.size) * (t_end - t0)).astype(np.int64)
    return pd.DataFrame({
        "src_user_id": _take(user_ids, src),
        "dst_user_id": _take(user_ids, dst),
        "kind": pd.array(kind, dtype="str"),
        "timestamp": _iso(ts),
    })


def generate_dataset(cfg: SynthConfig, dest: Path) -> Path:
    """Write a synthetic dataset folder that passes the quality gate.

    Files are written with :func:`quality.contract.write_dataset`; the config goes next to them
    as ``synth_config.json`` so the folder can be regenerated. The same config writes
    byte-identical files.

    Args:
        cfg: what to generate.
        dest: the dataset folder (created if missing; contract files in it are replaced).

    Returns:
        The folder written.
    """
    dest = Path(dest)
    data = synthesize(cfg)
    if data.user_links is None:
        # A folder reused across domains must not keep a previous run's friend graph.
        for ext in (".csv", ".parquet"):
            (dest / f"user_links{ext}").unlink(missing_ok=True)
    write_dataset(dest, data.manifest, data.users, data.items, data.interactions, data.user_links, fmt=cfg.fmt)
    (dest / CONFIG_FILE).write_text(cfg.model_dump_json(indent=2) + "\n", encoding="utf-8")
    log.info("wrote synthetic %s dataset to %s: %d users, %d items, %d interactions", cfg.domain, dest,
             len(data.users), len(data.items), len(data.interactions))
    return dest


# =========================================================================== bundled samples

#: The configs of the samples shipped in ``quality/samples/``: small enough that the whole
#: bundle stays under 2 MB, big enough that every community has dozens of users and items.
BUNDLED_SAMPLES: dict[str, SynthConfig] = {
    "ecommerce": SynthConfig(domain="ecommerce", n_users=300, n_items=400, n_interactions=4000,
                             seed=11, name="sample-ecommerce"),
    "content": SynthConfig(domain="content", n_users=300, n_items=400, n_interactions=4000,
                           seed=12, name="sample-content"),
    "social": SynthConfig(domain="social", n_users=300, n_items=300, n_interactions=4000,
                          seed=13, name="sample-social"),
    "travel": SynthConfig(domain="travel", n_users=250, n_items=300, n_interactions=3000,
                          seed=14, name="sample-travel"),
}


def sample_path(domain: str) -> Path:
    """The folder of the bundled sample for ``domain`` (inside the installed package).

    Raises:
        ValueError: ``domain`` is not one of the four domains.
    """
    if domain not in DOMAINS:
        raise ValueError(f"domain {domain!r} is not supported, must be one of {DOMAINS}")
    return SAMPLES_DIR / domain


def write_bundled_samples(root: Path | None = None) -> dict[str, Path]:
    """(Re)generate the four bundled samples from :data:`BUNDLED_SAMPLES`.

    Args:
        root: where to write ``<domain>/`` folders (default: the package's samples folder).

    Returns:
        The folder written per domain.
    """
    root = Path(root) if root is not None else SAMPLES_DIR
    return {d: generate_dataset(cfg, root / d) for d, cfg in BUNDLED_SAMPLES.items()}
