"""A seeded generator of an English-like language that is rich in agreement.

The language follows the two examples that "Understanding LSTMs" uses to motivate the
cell state: the *number* of a subject decides the form of its verb, and the *gender* of
a subject decides the pronoun that refers back to it, possibly many words later.

Rules of the language (all sentences are grammatical by construction):

* Present-tense verbs and ``is/are``, ``was/were``, ``has/have`` agree in number with
  their subject; past-tense verbs (other than ``was/were``) and ``had`` do not inflect.
* A pronoun (``he/she/it/they``, ``him/her/them``, ``himself/herself/themselves``,
  ``his/her/their``) always refers to the subject of the clause it depends on: the
  matrix subject for ``said that she ...`` and reflexives, the previous sentence's
  subject for a sentence-initial pronoun. This is stricter than English, where
  ``The queen near the king said that he ...`` could mean the king; the minimal pairs
  rely on it.
* Nouns are things (``it``), common-gender people and animals (``author``, ``dog``:
  plural pronoun only), gendered nouns (``king/queen``) and first names (singular only).

Words are kept with their features (:class:`NounToken`, :class:`Agreement`), so tests
can check agreement and attractors from the structures rather than from strings.

Held-out split: every tenth noun lemma, gendered pair and first name (index % 10 == 9 in
each word list) never appears with ``heldout=False``. With ``heldout=True`` every
main-clause subject (the controller that the minimal pairs test) is a held-out item and
all other nouns come from the training lexicon. A word-level model sees held-out words as
unknown tokens, so the split tests generalisation only with subword tokenisation.
"""

from __future__ import annotations

import bisect
import itertools
import json
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

SG, PL = "sg", "pl"
MASC, FEM, COMMON, NEUTER = "m", "f", "c", "n"
ALL_GENDERS = (NEUTER, COMMON, MASC, FEM)
ANIMATE_GENDERS = (COMMON, MASC, FEM)
PRESENT, PAST = "present", "past"
HELDOUT_EVERY = 10
HELDOUT_OFFSET = 9

# ---------------------------------------------------------------------------
# Word lists
# ---------------------------------------------------------------------------


def _words(text: str) -> tuple[str, ...]:
    """Whitespace-separated words as a tuple (keeps the word lists compact)."""
    return tuple(text.split())


def _pairs(text: str) -> tuple[tuple[str, str], ...]:
    """Whitespace-separated ``a/b`` items as pairs."""
    return tuple((m, f) for m, f in (item.split("/") for item in text.split()))


THING_NOUNS = _words(
    """
    key cabinet table door chair window book box bottle cup plate lamp desk bed wall floor roof
    house car bus train boat ship bridge road tower garden park river lake mountain hill tree flower
    leaf stone rock coin ring hat coat shoe glove shirt bag basket bucket candle clock map letter
    envelope pencil pen knife fork spoon bowl jar kettle pot pan oven stove sofa carpet curtain
    mirror picture poster shelf drawer ladder rope chain wheel engine bicycle truck wagon cart tent
    cabin castle palace church temple school office factory shop market station airport hospital
    library museum theater tunnel gate fence path street village city island forest field farm barn
    stable fountain statue pillar drum guitar piano violin trumpet bell flag banner ticket card
    stamp photo album diary notebook folder computer phone radio camera screen keyboard cable
    battery bulb button needle blanket pillow towel umbrella wallet purse suitcase trunk helmet
    sword shield arrow axe hammer nail shovel brush comb potato tomato apple orange lemon banana
    cake pie sandwich cookie barrel crate vase kite balloon puzzle toy ball medal trophy crown jewel
    necklace bracelet mask scarf cushion bench chimney staircase balcony corridor cellar attic
    meadow
    """
)

COMMON_NOUNS = _words(
    """
    author guard teacher doctor pilot farmer student soldier lawyer nurse singer painter dancer
    writer baker sailor driver judge officer visitor neighbor friend child person baby chef poet
    pianist scientist engineer mechanic tourist stranger senator minister manager player clerk
    dentist surgeon architect editor banker gardener hunter dog cat horse wolf mouse bird rabbit fox
    parrot monkey
    """
)

GENDERED_PAIRS = _pairs(
    """
    king/queen prince/princess boy/girl man/woman father/mother son/daughter brother/sister
    uncle/aunt nephew/niece husband/wife actor/actress waiter/waitress host/hostess duke/duchess
    emperor/empress lord/lady monk/nun priest/priestess god/goddess hero/heroine groom/bride
    widower/widow grandfather/grandmother grandson/granddaughter stepfather/stepmother
    stepson/stepdaughter boyfriend/girlfriend landlord/landlady policeman/policewoman
    businessman/businesswoman salesman/saleswoman chairman/chairwoman spokesman/spokeswoman
    schoolboy/schoolgirl baron/baroness wizard/witch steward/stewardess headmaster/headmistress
    fisherman/fisherwoman horseman/horsewoman sportsman/sportswoman nobleman/noblewoman tsar/tsarina
    abbot/abbess lad/lass sorcerer/sorceress shepherd/shepherdess congressman/congresswoman
    """
)

MALE_NAMES = _words(
    """
    John James Peter David Michael Robert William Thomas Richard Charles Daniel Paul Mark George
    Edward Henry Steven Andrew Kevin Brian Simon Martin Patrick Frank Oliver Harry Jack Samuel
    Benjamin Joseph Arthur Walter Albert Louis Victor Oscar Hugo Felix Leo Max Tom Adam Ryan Lucas
    Ethan Noah Owen Carl Dennis Howard
    """
)

FEMALE_NAMES = _words(
    """
    Mary Anna Sarah Emma Alice Laura Julia Susan Helen Elizabeth Margaret Catherine Jane Linda Karen
    Nancy Lisa Emily Sophie Rachel Hannah Olivia Charlotte Lucy Grace Chloe Claire Diana Fiona Irene
    Judith Maria Nora Paula Rebecca Sylvia Teresa Ursula Vera Wendy Zoe Ella Amy Kate Ruth Eva
    Monica Sandra Ellen Martha
    """
)

IRREGULAR_PLURALS = dict(
    _pairs(
        """
        man/men woman/women child/children person/people mouse/mice wolf/wolves leaf/leaves knife/knives
        shelf/shelves scarf/scarves wife/wives potato/potatoes tomato/tomatoes hero/heroes
        """
    )
)

# Verb classes hold base forms; a verb may sit in several classes.
ANIMATE_INTRANSITIVE = _words(
    """
    laugh smile sleep cry dance sing swim run walk jump wait shout whisper sneeze cough yawn frown
    nod sigh giggle listen rest travel arrive complain pray shiver blush grin hesitate relax panic
    sit stand kneel stumble wander return argue snore weep scream sob chuckle yell
    """
)
THING_INTRANSITIVE = _words(
    """
    fall shine rust shake glow crack melt sink float break collapse tremble rattle creak squeak drip
    burn freeze spin roll sparkle vanish
    """
)
TRANSITIVE_ANY = _words(
    """
    like love hate see watch find want need prefer remember forget notice ignore describe mention
    recognize study examine
    """
)
TRANSITIVE_THING = _words(
    """
    carry hold hide buy sell steal lose keep bring take move clean paint fix open close push pull
    drop touch break inspect borrow lend wash polish repair throw kick grab lift
    """
)
TRANSITIVE_ANIMATE = _words(
    """
    admire trust help visit greet thank follow avoid blame praise amuse surprise introduce teach
    criticize meet call hurt defend protect annoy distract encourage comfort insult forgive pity
    obey kiss hug tickle scold interview invite
    """
)
REFLEXIVE_VERBS = _words(
    """
    hurt blame praise admire defend protect introduce teach amuse criticize forgive see hate like
    love trust help comfort encourage distract insult pity describe recognize surprise wash
    """
)
CLAUSE_VERBS = _words(
    """
    say think know believe hope claim feel notice admit explain realize suspect hear dream fear
    insist announce promise remember forget mention complain whisper shout
    """
)

IRREGULAR_PAST = dict(
    _pairs(
        """
        see/saw find/found forget/forgot hold/held hide/hid buy/bought sell/sold steal/stole lose/lost
        keep/kept bring/brought take/took break/broke throw/threw lend/lent teach/taught meet/met
        hurt/hurt forgive/forgave say/said think/thought know/knew feel/felt hear/heard sing/sang
        swim/swam run/ran sleep/slept sit/sat stand/stood weep/wept kneel/knelt fall/fell shine/shone
        shake/shook sink/sank freeze/froze spin/spun panic/panicked
        """
    )
)
DOUBLED_FINAL = _words("stop drop grab hug sob nod grin admit prefer drip")

GENERAL_ADJECTIVES = _words(
    """
    old new big small strange beautiful ugly large ordinary famous mysterious tall short
    young lovely odd fine perfect
    """
)
THING_ADJECTIVES = _words(
    """
    wooden heavy broken empty shiny dusty rusty cheap expensive round square plastic golden tiny
    huge dirty dry warm cold fragile ancient modern narrow wide sharp smooth rough bright dark soft
    hard valuable useless red blue green yellow white black brown grey
    """
)
ANIMATE_ADJECTIVES = _words(
    """
    tired happy angry brave clever hungry nervous proud sad calm kind rude lazy shy polite honest
    jealous curious lonely sleepy busy wise cheerful grumpy gentle cruel friendly quiet noisy
    patient foolish sick anxious generous
    """
)
SENTENCE_ADVERBS = _words(
    """
    probably certainly clearly really also still actually obviously apparently surely
    """
)
FREQUENCY_ADVERBS = _words(
    """
    often always never usually sometimes rarely seldom secretly quietly slowly gladly suddenly
    finally quickly
    """
)
MANNER_ADVERBS = _words(
    """
    loudly softly happily sadly nervously calmly again badly well politely angrily patiently
    """
)
THING_ADVERBS = _words("again slowly quickly suddenly softly loudly")
MODIFIER_PREPOSITIONS = _words("near behind beside with without of from by opposite")
THING_PREPOSITIONS = _words("to on in under inside for above below around beyond")
LOCATION_PREPOSITIONS = _words("on in under near behind beside inside above")
QUANTIFIERS = _words("two three four five many several some ten")
CONNECTORS = _words("because when although")

_PRONOUNS = {
    "subj": {MASC: "he", FEM: "she", NEUTER: "it", PL: "they"},
    "obj": {MASC: "him", FEM: "her", NEUTER: "it", PL: "them"},
    "refl": {MASC: "himself", FEM: "herself", NEUTER: "itself", PL: "themselves"},
    "poss": {MASC: "his", FEM: "her", NEUTER: "its", PL: "their"},
}

# ---------------------------------------------------------------------------
# Lexicon
# ---------------------------------------------------------------------------


def _plural(word: str) -> str:
    """Regular English plural with explicit irregulars."""
    if word.endswith("man"):
        return word[:-3] + "men"
    if word in IRREGULAR_PLURALS:
        return IRREGULAR_PLURALS[word]
    if word.endswith(("s", "x", "z", "ch", "sh")):
        return word + "es"
    if word.endswith("y") and word[-2] not in "aeiou":
        return word[:-1] + "ies"
    return word + "s"


def _third_person(base: str) -> str:
    """Third person singular present: likes, watches, carries."""
    if base.endswith(("s", "x", "z", "ch", "sh", "o")):
        return base + "es"
    if base.endswith("y") and base[-2] not in "aeiou":
        return base[:-1] + "ies"
    return base + "s"


def _past(base: str) -> str:
    """Simple past: irregulars from the table, then regular -ed spelling rules."""
    if base in IRREGULAR_PAST:
        return IRREGULAR_PAST[base]
    if base in DOUBLED_FINAL:
        return base + base[-1] + "ed"
    if base.endswith("e"):
        return base + "d"
    if base.endswith("y") and base[-2] not in "aeiou":
        return base[:-1] + "ied"
    return base + "ed"


@dataclass(frozen=True)
class Noun:
    """A noun lemma (or first name) with its features."""

    singular: str
    plural: str | None
    gender: str
    is_name: bool = False

    def form(self, number: str) -> str:
        if number == SG:
            return self.singular
        if self.plural is None:
            raise ValueError(f"{self.singular} has no plural")
        return self.plural


@dataclass(frozen=True)
class Verb:
    """A verb with its present (sg/pl) and past (sg/pl) forms."""

    base: str
    third: str
    past: str
    past_plural: str | None = None

    def form(self, number: str, tense: str) -> str:
        if tense == PRESENT:
            return self.third if number == SG else self.base
        if self.past_plural is not None and number == PL:
            return self.past_plural
        return self.past

    def agrees(self, tense: str) -> bool:
        """Whether the form carries number in this tense."""
        return tense == PRESENT or self.past_plural is not None


def _verb(base: str) -> Verb:
    return Verb(base, _third_person(base), _past(base))


BE = Verb("are", "is", "was", "were")
HAVE = Verb("have", "has", "had")
ALL_VERB_BASES = tuple(
    dict.fromkeys(
        ANIMATE_INTRANSITIVE
        + THING_INTRANSITIVE
        + TRANSITIVE_ANY
        + TRANSITIVE_THING
        + TRANSITIVE_ANIMATE
        + REFLEXIVE_VERBS
        + CLAUSE_VERBS
    )
)
VERBS = {base: _verb(base) for base in ALL_VERB_BASES}


def _is_heldout(index: int) -> bool:
    return index % HELDOUT_EVERY == HELDOUT_OFFSET


def _split(items: Sequence) -> tuple[tuple, tuple]:
    """(training items, held-out items): every tenth item is held out."""
    train = tuple(x for i, x in enumerate(items) if not _is_heldout(i))
    held = tuple(x for i, x in enumerate(items) if _is_heldout(i))
    return train, held


@dataclass(frozen=True)
class Lexicon:
    """Noun pools by category."""

    things: tuple[Noun, ...]
    commons: tuple[Noun, ...]
    males: tuple[Noun, ...]
    females: tuple[Noun, ...]
    male_names: tuple[Noun, ...]
    female_names: tuple[Noun, ...]

    def nouns(self) -> tuple[Noun, ...]:
        return self.things + self.commons + self.males + self.females + self.male_names + self.female_names


def _nouns(words: Iterable[str], gender: str) -> tuple[Noun, ...]:
    return tuple(Noun(w, _plural(w), gender) for w in words)


def _names(words: Iterable[str], gender: str) -> tuple[Noun, ...]:
    return tuple(Noun(w, None, gender, is_name=True) for w in words)


def _build_lexicons() -> tuple[Lexicon, Lexicon]:
    things, held_things = _split(THING_NOUNS)
    commons, held_commons = _split(COMMON_NOUNS)
    pairs, held_pairs = _split(GENDERED_PAIRS)
    male_names, held_male = _split(MALE_NAMES)
    female_names, held_female = _split(FEMALE_NAMES)

    def lexicon(t, c, p, mn, fn) -> Lexicon:
        return Lexicon(
            things=_nouns(t, NEUTER),
            commons=_nouns(c, COMMON),
            males=_nouns((m for m, _ in p), MASC),
            females=_nouns((f for _, f in p), FEM),
            male_names=_names(mn, MASC),
            female_names=_names(fn, FEM),
        )

    return (
        lexicon(things, commons, pairs, male_names, female_names),
        lexicon(held_things, held_commons, held_pairs, held_male, held_female),
    )


TRAIN_LEXICON, HELDOUT_LEXICON = _build_lexicons()


def _index_nouns() -> dict[str, tuple[Noun, str]]:
    """Noun form -> (noun, number)."""
    index = {}
    for noun in TRAIN_LEXICON.nouns() + HELDOUT_LEXICON.nouns():
        index[noun.singular] = (noun, SG)
        if noun.plural is not None:
            index[noun.plural] = (noun, PL)
    return index


def _index_verbs() -> dict[str, str]:
    """Inflecting verb form -> number (base forms read as plural present)."""
    index = {}
    for verb in (*VERBS.values(), BE, HAVE):
        index[verb.third], index[verb.base] = SG, PL
        if verb.past_plural is not None:
            index[verb.past], index[verb.past_plural] = SG, PL
    return index


_NOUN_BY_FORM = _index_nouns()
_VERB_NUMBER = _index_verbs()


def heldout_words() -> frozenset[str]:
    """Every form of every held-out noun and name."""
    words = set()
    for noun in HELDOUT_LEXICON.nouns():
        words.add(noun.singular)
        if noun.plural is not None:
            words.add(noun.plural)
    return frozenset(words)


def noun_features(word: str) -> tuple[str, str] | None:
    """(number, gender) of a noun form or name, or None if ``word`` is not a noun."""
    hit = _NOUN_BY_FORM.get(word) or _NOUN_BY_FORM.get(word.lower())
    return None if hit is None else (hit[1], hit[0].gender)


def verb_number(word: str) -> str | None:
    """Number carried by a present-tense form (or was/were), None for other words.

    Base forms read as plural: only ask about words known to be agreement targets.
    """
    return _VERB_NUMBER.get(word.lower())


def pronoun_features(word: str) -> frozenset[tuple[str, str]]:
    """All (number, gender) pairs a pronoun can stand for; empty for non-pronouns."""
    out = set()
    for forms in _PRONOUNS.values():
        for key, form in forms.items():
            if form == word.lower():
                if key == PL:
                    out.update((PL, g) for g in ALL_GENDERS)
                else:
                    out.add((SG, key))
    return frozenset(out)


def pronoun(case: str, number: str, gender: str) -> str:
    """The pronoun of ``case`` (subj/obj/refl/poss) for a referent."""
    if number == PL:
        return _PRONOUNS[case][PL]
    if gender == COMMON:
        raise ValueError("singular common-gender nouns take no pronoun")
    return _PRONOUNS[case][gender]


# ---------------------------------------------------------------------------
# Sentence structures
# ---------------------------------------------------------------------------


class NounToken(NamedTuple):
    """A noun (or name) head in a sentence."""

    index: int
    number: str
    gender: str


class Agreement(NamedTuple):
    """The word at ``target`` agrees with the controller (a noun head or pronoun)."""

    controller: int
    target: int
    kind: str  # "verb" (number) or "pronoun" (number and gender)


@dataclass(frozen=True)
class Sentence:
    """One line of text with its noun heads and agreement links."""

    tokens: tuple[str, ...]
    nouns: tuple[NounToken, ...]
    agreements: tuple[Agreement, ...]
    construction: str

    @property
    def text(self) -> str:
        return " ".join(self.tokens)


@dataclass(frozen=True)
class MinimalPair:
    """A grammatical sentence and the single-word swap that breaks one agreement."""

    good: Sentence
    target: Agreement
    bad_word: str
    agreement: str  # "number" or "gender"
    attractors: int

    @property
    def construction(self) -> str:
        return self.good.construction

    @property
    def bad_tokens(self) -> tuple[str, ...]:
        tokens = list(self.good.tokens)
        tokens[self.target.target] = self.bad_word
        return tuple(tokens)

    @property
    def distance(self) -> int:
        return self.target.target - self.target.controller - 1

    def to_dict(self, pair_id: int) -> dict:
        """BLiMP-style JSON record."""
        term = "subject_verb_agreement" if self.target.kind == "verb" else "anaphor_agreement"
        return {
            "sentence_good": self.good.text,
            "sentence_bad": " ".join(self.bad_tokens),
            "construction": self.construction,
            "attractors": self.attractors,
            "distance": self.distance,
            "agreement": self.agreement,
            "field": "syntax",
            "linguistics_term": term,
            "UID": self.construction,
            "pairID": str(pair_id),
        }


class Ref(NamedTuple):
    """Something later words can agree with: a noun head or a pronoun."""

    index: int
    number: str
    gender: str

    @property
    def animate(self) -> bool:
        return self.gender != NEUTER

    @property
    def has_pronoun(self) -> bool:
        return self.number == PL or self.gender != COMMON


class NounPhrase(NamedTuple):
    """Words of a noun phrase; ``head`` is the offset of the noun within ``words``."""

    noun: Noun
    number: str
    words: tuple[str, ...]
    head: int

    @property
    def gender(self) -> str:
        return self.noun.gender


def _weighted(rng: random.Random, items: Sequence, cum_weights: Sequence[float]):
    """One item drawn by cumulative weights (what ``rng.choices(...)[0]`` does, faster)."""
    return items[bisect.bisect(cum_weights, rng.random() * cum_weights[-1])]


def _capitalise(word: str) -> str:
    return word[:1].upper() + word[1:]


def count_attractors(sentence: Sentence, agreement: Agreement, feature: str) -> int:
    """Nouns strictly between controller and target whose ``feature`` differs."""
    controller = next(n for n in sentence.nouns if n.index == agreement.controller)
    return sum(
        1
        for n in sentence.nouns
        if agreement.controller < n.index < agreement.target
        and getattr(n, feature) != getattr(controller, feature)
    )


@dataclass
class _Builder:
    """Collects tokens, noun heads and agreement links of one line."""

    tokens: list[str] = field(default_factory=list)
    nouns: list[NounToken] = field(default_factory=list)
    agreements: list[Agreement] = field(default_factory=list)
    target: Agreement | None = None
    bad: str | None = None

    def add(self, *words: str) -> None:
        self.tokens.extend(words)

    def add_np(self, np: NounPhrase) -> Ref:
        start = len(self.tokens)
        self.tokens.extend(np.words)
        ref = Ref(start + np.head, np.number, np.gender)
        self.nouns.append(NounToken(ref.index, ref.number, ref.gender))
        return ref

    def add_agreeing(self, word: str, controller: Ref, kind: str) -> Agreement:
        agreement = Agreement(controller.index, len(self.tokens), kind)
        self.tokens.append(word)
        self.agreements.append(agreement)
        return agreement

    def mark(self, agreement: Agreement | None, bad: str | None) -> None:
        """Remember the agreement a minimal pair would test (the first one marked)."""
        if self.target is None and agreement is not None:
            self.target, self.bad = agreement, bad

    def build(self, construction: str) -> Sentence:
        """Freeze the line; sentence-initial words (and a marked bad word there) get a capital."""
        tokens = [
            _capitalise(w) if i == 0 or self.tokens[i - 1] == "." else w for i, w in enumerate(self.tokens)
        ]
        if self.target is not None and self.bad is not None and tokens[self.target.target][0].isupper():
            self.bad = _capitalise(self.bad)
        return Sentence(tuple(tokens), tuple(self.nouns), tuple(self.agreements), construction)


# ---------------------------------------------------------------------------
# Phrase builders
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Ctx:
    """Randomness and noun pools of one generation run."""

    rng: random.Random
    subjects: Lexicon
    others: Lexicon
    pair: bool


@dataclass(frozen=True)
class _Spec:
    """What a construction should contain: attractors, fillers, agreement type."""

    attractors: int
    extra: int
    agreement: str = "number"


def _other_number(number: str) -> str:
    return PL if number == SG else SG


SINGULAR_ANTECEDENT_SHARE = 0.75
# Training pronoun lines whose subject is followed by an emphatic reflexive ("The queen
# herself said that she ..."): the one place where gender shows right after its noun, as
# number does in "The dog sleeps". Without it gender is learned only through a pronoun
# 2-10 words later, after a plateau whose length varied from 900 to over 6,000 steps.
EMPHATIC_SHARE = 0.2
# Training pronoun lines with a gendered subject whose interveners are gender attractors
# (singular nouns of the other gender, as in the suite's gender pairs); the rest are free.
# Without them "the nearest gendered noun" was good enough in training (data/README.md).
GENDER_ATTRACTOR_SHARE = 0.3
_POOL_WEIGHTS = {NEUTER: 4.0, COMMON: 3.0, MASC: 2.0, FEM: 2.0}
_NAME_WEIGHT = 1.5
_POOL_CACHE: dict[tuple, tuple[list[tuple[Noun, ...]], list[float]]] = {}


def _noun_pools(
    lex: Lexicon, number: str, genders: Sequence[str], names: bool
) -> tuple[list[tuple[Noun, ...]], list[float]]:
    """Noun pools for a request and their cumulative weights.

    Cached by ``id(lex)``: the lexicons are module constants.
    """
    key = (id(lex), number, tuple(genders), names)
    if key not in _POOL_CACHE:
        by_gender = {NEUTER: lex.things, COMMON: lex.commons, MASC: lex.males, FEM: lex.females}
        name_pools = {MASC: lex.male_names, FEM: lex.female_names}
        pools, weights = [], []
        for gender in ALL_GENDERS:
            if gender not in genders:
                continue
            pools.append(by_gender[gender])
            weights.append(_POOL_WEIGHTS[gender])
            if names and number == SG and gender in name_pools:
                pools.append(name_pools[gender])
                weights.append(_NAME_WEIGHT)
        _POOL_CACHE[key] = (pools, list(itertools.accumulate(weights)))
    return _POOL_CACHE[key]


def _pick_noun(
    rng: random.Random, lex: Lexicon, number: str, genders: Sequence[str], names: bool = True
) -> Noun:
    """A random noun of one of ``genders`` that has a ``number`` form."""
    pools, cum_weights = _noun_pools(lex, number, genders, names)
    return rng.choice(_weighted(rng, pools, cum_weights))


def _adjective(rng: random.Random, animate: bool) -> str:
    specific = ANIMATE_ADJECTIVES if animate else THING_ADJECTIVES
    return rng.choice(GENERAL_ADJECTIVES + specific if rng.random() < 0.3 else specific)


def _adjectives(rng: random.Random, animate: bool, count: int) -> list[str]:
    """``count`` distinct adjectives, coordinated: old / old and tired / big , old and tired."""
    words: list[str] = []
    while len(words) < count:
        adj = _adjective(rng, animate)
        if adj not in words:
            words.append(adj)
    if count == 1:
        return words
    out: list[str] = []
    for adj in words[:-2]:
        out += [adj, ","]
    return out + [words[-2], "and", words[-1]]


def _noun_phrase(
    rng: random.Random, noun: Noun, number: str, adj_p: float = 0.15, det: str = "the"
) -> NounPhrase:
    """``the [adjectives] noun`` (or a bare name)."""
    if noun.is_name:
        return NounPhrase(noun, number, (noun.singular,), 0)
    words: list[str] = []
    if rng.random() < adj_p:
        words = _adjectives(rng, noun.gender != NEUTER, 1 if rng.random() < 0.75 else 2)
    if det in ("a", "an"):
        det = "an" if (words[0] if words else noun.singular)[0] in "aeiou" else "a"
    words = [det, *words, noun.form(number)]
    return NounPhrase(noun, number, tuple(words), len(words) - 1)


def _object_np(rng: random.Random, lex: Lexicon, genders: Sequence[str]) -> NounPhrase:
    """An object noun phrase with a varied determiner."""
    number = rng.choice((SG, PL))
    noun = _pick_noun(rng, lex, number, genders)
    if noun.is_name:
        return _noun_phrase(rng, noun, SG)
    roll = rng.random()
    if number == SG:
        det = "a" if roll < 0.35 else "the"
    else:
        det = rng.choice(QUANTIFIERS) if roll < 0.35 else "the"
    return _noun_phrase(rng, noun, number, det=det)


def _subject(
    ctx: _Ctx,
    number: str | None = None,
    genders: Sequence[str] = ALL_GENDERS,
    adj_p: float = 0.2,
    names: bool = True,
) -> NounPhrase:
    """A subject noun phrase from the controller pool."""
    number = number or ctx.rng.choice((SG, PL))
    noun = _pick_noun(ctx.rng, ctx.subjects, number, genders, names)
    return _noun_phrase(ctx.rng, noun, number, adj_p=adj_p)


def _with_pronoun(ctx: _Ctx, genders: Sequence[str] = ANIMATE_GENDERS) -> NounPhrase:
    """A subject that a pronoun can refer to (no singular common-gender noun).

    Singular three times in four: gender is carried only by singular antecedents, and each
    gendered noun and name needs enough he/she events for a small model to learn it.
    """
    number = SG if ctx.rng.random() < SINGULAR_ANTECEDENT_SHARE else PL
    if number == SG:
        genders = tuple(g for g in genders if g != COMMON)
    return _subject(ctx, number, genders)


def _intervener_specs(
    ctx: _Ctx, ctrl: Ref, spec: _Spec, bad_gender: str | None = None
) -> list[tuple[str, tuple[str, ...]]]:
    """(number, allowed genders) of each intervening noun; attractors at random slots."""
    total = spec.attractors + spec.extra
    slots = set(ctx.rng.sample(range(total), spec.attractors))
    out = []
    for i in range(total):
        attractor = i in slots
        if spec.agreement == "gender":
            other = FEM if ctrl.gender == MASC else MASC
            out.append((SG, (other,)) if attractor else (ctx.rng.choice((SG, PL)), (ctrl.gender,)))
        elif bad_gender is not None:
            out.append((SG, (bad_gender,)) if attractor else (PL, ALL_GENDERS))
        else:
            number = _other_number(ctrl.number) if attractor else ctrl.number
            out.append((number, ALL_GENDERS))
    return out


def _free_specs(ctx: _Ctx, count: int) -> list[tuple[str, tuple[str, ...]]]:
    """Unconstrained interveners (training pronoun sentences)."""
    return [(ctx.rng.choice((SG, PL)), ALL_GENDERS) for _ in range(count)]


_ANY_OBJECT_PREPOSITIONS = MODIFIER_PREPOSITIONS + THING_PREPOSITIONS * 2
_PERSON_LOCATIONS = ("near", "behind", "beside", "with")


def _preposition(rng: random.Random, animate: bool) -> str:
    """A noun-modifying preposition: near the king; to the door only between things."""
    return rng.choice(MODIFIER_PREPOSITIONS if animate else _ANY_OBJECT_PREPOSITIONS)


def _location(rng: random.Random, object_animate: bool) -> str:
    """A predicative location preposition: on the table, near the king."""
    return rng.choice(_PERSON_LOCATIONS if object_animate else LOCATION_PREPOSITIONS)


def _add_pps(ctx: _Ctx, b: _Builder, specs: Sequence[tuple[str, tuple[str, ...]]], head: Ref) -> None:
    """A chain of PPs, each attached to the previous noun: to the cabinets near the door."""
    animate = head.animate
    for number, genders in specs:
        noun = _pick_noun(ctx.rng, ctx.others, number, genders)
        b.add(_preposition(ctx.rng, animate or noun.gender != NEUTER))
        b.add_np(_noun_phrase(ctx.rng, noun, number, adj_p=0.1))
        animate = noun.gender != NEUTER


def _emit_verb(b: _Builder, verb: Verb, ref: Ref, tense: str) -> tuple[Agreement | None, str]:
    """Add a verb form; returns the agreement (None if the form does not inflect) and
    the form of the other number."""
    word = verb.form(ref.number, tense)
    bad = verb.form(_other_number(ref.number), tense)
    if verb.agrees(tense):
        return b.add_agreeing(word, ref, "verb"), bad
    b.add(word)
    return None, bad


def _add_pronoun(b: _Builder, case: str, ref: Ref) -> Agreement:
    return b.add_agreeing(pronoun(case, ref.number, ref.gender), ref, "pronoun")


def _verb_from(rng: random.Random, bases: Sequence[str]) -> Verb:
    return VERBS[rng.choice(bases)]


_ANIMATE_OBJECT_VERBS = TRANSITIVE_ANY + TRANSITIVE_ANIMATE
_THING_OBJECT_VERBS = TRANSITIVE_ANY + TRANSITIVE_THING


def _transitive(rng: random.Random, object_animate: bool) -> Verb:
    """A transitive verb (animate subject) that accepts such an object."""
    return _verb_from(rng, _ANIMATE_OBJECT_VERBS if object_animate else _THING_OBJECT_VERBS)


def _copula_predicate(ctx: _Ctx, b: _Builder, ref: Ref, tense: str) -> tuple[Agreement | None, str]:
    """is old / were very tired / are on the table."""
    rng = ctx.rng
    result = _emit_verb(b, BE, ref, tense)
    if rng.random() < 0.6:
        if rng.random() < 0.25:
            b.add("very")
        b.add(*_adjectives(rng, ref.animate, 1 if rng.random() < 0.7 else 2))
    else:
        b.add(rng.choice(LOCATION_PREPOSITIONS))
        b.add_np(_noun_phrase(rng, rng.choice(ctx.others.things), rng.choice((SG, PL))))
    return result


def _have_predicate(ctx: _Ctx, b: _Builder, ref: Ref, tense: str) -> tuple[Agreement | None, str]:
    """has two keys."""
    result = _emit_verb(b, HAVE, ref, tense)
    b.add_np(_object_np(ctx.rng, ctx.others, ALL_GENDERS if ref.animate else (NEUTER,)))
    return result


def _intransitive_predicate(ctx: _Ctx, b: _Builder, ref: Ref, tense: str) -> tuple[Agreement | None, str]:
    """laughs loudly / fell in the garden."""
    rng = ctx.rng
    verbs = ANIMATE_INTRANSITIVE if ref.animate else THING_INTRANSITIVE
    result = _emit_verb(b, _verb_from(rng, verbs), ref, tense)
    roll = rng.random()
    if roll < 0.3:
        b.add(rng.choice(MANNER_ADVERBS if ref.animate else THING_ADVERBS))
    elif roll < 0.45:
        b.add(rng.choice(LOCATION_PREPOSITIONS))
        b.add_np(_noun_phrase(rng, rng.choice(ctx.others.things), rng.choice((SG, PL))))
    return result


def _transitive_predicate(ctx: _Ctx, b: _Builder, ref: Ref, tense: str) -> tuple[Agreement | None, str]:
    """likes the guards / found a key."""
    object_animate = ctx.rng.random() < 0.5
    result = _emit_verb(b, _transitive(ctx.rng, object_animate), ref, tense)
    genders = ANIMATE_GENDERS if object_animate else (NEUTER,)
    b.add_np(_object_np(ctx.rng, ctx.others, genders))
    return result


def _possessive_predicate(ctx: _Ctx, b: _Builder, ref: Ref, tense: str) -> tuple[Agreement | None, str]:
    """lost his keys."""
    rng = ctx.rng
    result = _emit_verb(b, _verb_from(rng, TRANSITIVE_THING), ref, tense)
    _add_pronoun(b, "poss", ref)
    number = rng.choice((SG, PL))
    noun = rng.choice(ctx.others.things)
    words = _noun_phrase(rng, noun, number).words[1:]
    b.add_np(NounPhrase(noun, number, words, len(words) - 1))
    return result


_PREDICATES = {
    "copula": _copula_predicate,
    "have": _have_predicate,
    "intransitive": _intransitive_predicate,
    "transitive": _transitive_predicate,
    "possessive": _possessive_predicate,
}


_PREDICATE_KINDS: dict[tuple[bool, ...], tuple[list[str], list[float]]] = {}


def _predicate(
    ctx: _Ctx,
    b: _Builder,
    ref: Ref,
    tense: str,
    *,
    plain: bool = False,
    copula: bool = True,
    agree: bool = False,
) -> tuple[Agreement | None, str]:
    """A verb phrase for ``ref``; returns the head verb's agreement and its other form.

    ``plain`` avoids later pronouns (so one swapped word breaks exactly one agreement);
    ``agree`` forces a head verb that inflects; ``copula`` allows is/are/was/were.
    """
    only_copula = agree and tense == PAST
    key = (only_copula, ref.animate, not plain and ref.has_pronoun, copula)
    if key not in _PREDICATE_KINDS:
        kinds = {"copula": 1.0}
        if not only_copula:
            kinds = {"have": 1.0, "intransitive": 3.0}
            if ref.animate:
                kinds["transitive"] = 3.0
                if not plain and ref.has_pronoun:
                    kinds["possessive"] = 3.0
            if copula:
                kinds["copula"] = 3.0
        _PREDICATE_KINDS[key] = (list(kinds), list(itertools.accumulate(kinds.values())))
    kind = _weighted(ctx.rng, *_PREDICATE_KINDS[key])
    return _PREDICATES[kind](ctx, b, ref, tense)


def _tense(ctx: _Ctx) -> str:
    return PRESENT if ctx.rng.random() < 0.75 else PAST


def _main_predicate(ctx: _Ctx, b: _Builder, ref: Ref, *, copula: bool = True) -> None:
    """The verb phrase that number-agreement pairs test."""
    tense = PRESENT if ctx.pair and ctx.rng.random() < 0.8 else _tense(ctx)
    if not copula and tense == PAST and ctx.pair:
        tense = PRESENT
    b.mark(*_predicate(ctx, b, ref, tense, plain=ctx.pair, copula=copula, agree=ctx.pair))


# ---------------------------------------------------------------------------
# Constructions
# ---------------------------------------------------------------------------


def _simple(ctx: _Ctx, spec: _Spec) -> _Builder:
    """The dog sleeps ."""
    b = _Builder()
    ref = b.add_np(_subject(ctx))
    _main_predicate(ctx, b, ref)
    b.add(".")
    return b


def _adverb(ctx: _Ctx, spec: _Spec) -> _Builder:
    """The dogs probably often sleep ."""
    b = _Builder()
    ref = b.add_np(_subject(ctx))
    if ctx.rng.random() < 0.35:
        b.add(ctx.rng.choice(SENTENCE_ADVERBS))
    b.add(ctx.rng.choice(FREQUENCY_ADVERBS))
    _main_predicate(ctx, b, ref, copula=False)
    b.add(".")
    return b


def _adjectives_construction(ctx: _Ctx, spec: _Spec) -> _Builder:
    """The dogs , old and tired , sleep ."""
    b = _Builder()
    ref = b.add_np(_subject(ctx, adj_p=0.05))
    b.add(",", *_adjectives(ctx.rng, ref.animate, ctx.rng.choice((2, 2, 3))), ",")
    _main_predicate(ctx, b, ref)
    b.add(".")
    return b


def _at_least_one(spec: _Spec) -> _Spec:
    """The same spec with at least one intervening noun."""
    return _Spec(spec.attractors, max(spec.extra, 1 - min(spec.attractors, 1)), spec.agreement)


def _pp(ctx: _Ctx, spec: _Spec) -> _Builder:
    """The key to the cabinets near the door is old ."""
    b = _Builder()
    ref = b.add_np(_subject(ctx))
    spec = _at_least_one(spec)
    _add_pps(ctx, b, _intervener_specs(ctx, ref, spec), ref)
    _main_predicate(ctx, b, ref)
    b.add(".")
    return b


def _subj_rel(ctx: _Ctx, spec: _Spec) -> _Builder:
    """The author that likes the guards laughs . / The key that is on the tables is old ."""
    b = _Builder()
    ref = b.add_np(_subject(ctx, names=False))
    spec = _at_least_one(spec)
    specs = _intervener_specs(ctx, ref, spec)
    b.add("that")
    tense = _tense(ctx)
    number, genders = specs[0]
    noun = _pick_noun(ctx.rng, ctx.others, number, genders)
    if ref.animate and ctx.rng.random() < 0.8:
        _emit_verb(b, _transitive(ctx.rng, noun.gender != NEUTER), ref, tense)
    else:
        _emit_verb(b, BE, ref, tense)
        b.add(_location(ctx.rng, noun.gender != NEUTER))
    rel_object = b.add_np(_noun_phrase(ctx.rng, noun, number, adj_p=0.1))
    _add_pps(ctx, b, specs[1:], rel_object)
    _main_predicate(ctx, b, ref)
    b.add(".")
    return b


def _obj_rel(ctx: _Ctx, spec: _Spec) -> _Builder:
    """The author that the guards like laughs ."""
    b = _Builder()
    ref = b.add_np(_subject(ctx, names=False))
    spec = _at_least_one(spec)
    specs = _intervener_specs(ctx, ref, spec)
    b.add("that")
    number, genders = specs[0]
    genders = tuple(g for g in genders if g != NEUTER)
    noun = _pick_noun(ctx.rng, ctx.others, number, genders)
    rel_subject = b.add_np(_noun_phrase(ctx.rng, noun, number, adj_p=0.1))
    _add_pps(ctx, b, specs[1:], rel_subject)
    _emit_verb(b, _transitive(ctx.rng, ref.animate), rel_subject, _tense(ctx))
    _main_predicate(ctx, b, ref)
    b.add(".")
    return b


def _pronoun_subject(ctx: _Ctx, spec: _Spec) -> tuple[_Builder, Ref, str | None]:
    """Subject plus PPs for pronoun constructions; returns the bad pronoun gender."""
    b = _Builder()
    if not ctx.pair:
        ref = b.add_np(_with_pronoun(ctx))
        if ctx.rng.random() < EMPHATIC_SHARE:  # The queen herself ...: gender next to its noun
            _add_pronoun(b, "refl", ref)
        if ref.gender in (MASC, FEM) and ctx.rng.random() < GENDER_ATTRACTOR_SHARE:
            specs = _intervener_specs(ctx, ref, _Spec(spec.attractors, spec.extra, "gender"))
        else:
            specs = _free_specs(ctx, spec.attractors + spec.extra)
        _add_pps(ctx, b, specs, ref)
        return b, ref, None
    if spec.agreement == "gender":
        ref = b.add_np(_subject(ctx, SG, (MASC, FEM)))
        bad_gender = FEM if ref.gender == MASC else MASC
    else:
        ref = b.add_np(_subject(ctx, PL, ANIMATE_GENDERS))
        bad_gender = ref.gender if ref.gender in (MASC, FEM) else ctx.rng.choice((MASC, FEM))
    specs = _intervener_specs(ctx, ref, spec, bad_gender if spec.agreement == "number" else None)
    _add_pps(ctx, b, specs, ref)
    return b, ref, bad_gender


def _mark_pronoun(b: _Builder, case: str, ref: Ref, bad_gender: str | None) -> Ref:
    """Add a pronoun for ``ref``, mark it for pairs; returns the pronoun as a referent."""
    agreement = _add_pronoun(b, case, ref)
    if bad_gender is not None:
        b.mark(agreement, pronoun(case, SG, bad_gender))
    return Ref(agreement.target, ref.number, ref.gender)


def _continuation(ctx: _Ctx, b: _Builder, ref: Ref) -> None:
    """What follows a subject pronoun: number-neutral in pairs."""
    if ctx.pair:
        _predicate(ctx, b, ref, PAST, plain=True, copula=False)
    else:
        _predicate(ctx, b, ref, _tense(ctx))


def _pronoun_construction(ctx: _Ctx, spec: _Spec) -> _Builder:
    """The queen said that she laughed . / The queen said that the boys like her ."""
    b, ref, bad_gender = _pronoun_subject(ctx, spec)
    roll = ctx.rng.random()
    if ctx.pair or roll < 0.6:
        _emit_verb(b, _verb_from(ctx.rng, CLAUSE_VERBS), ref, PAST if ctx.pair else _tense(ctx))
        b.add("that")
        _continuation(ctx, b, _mark_pronoun(b, "subj", ref, bad_gender))
    elif roll < 0.8:
        _emit_verb(b, _verb_from(ctx.rng, CLAUSE_VERBS), ref, _tense(ctx))
        b.add("that")
        number = ctx.rng.choice((SG, PL))
        noun = _pick_noun(ctx.rng, ctx.others, number, ANIMATE_GENDERS)
        other = b.add_np(_noun_phrase(ctx.rng, noun, number))
        _emit_verb(b, _verb_from(ctx.rng, TRANSITIVE_ANIMATE), other, _tense(ctx))
        _add_pronoun(b, "obj", ref)
    else:
        _emit_verb(b, _verb_from(ctx.rng, ANIMATE_INTRANSITIVE), ref, _tense(ctx))
        b.add(ctx.rng.choice(CONNECTORS))
        _continuation(ctx, b, _mark_pronoun(b, "subj", ref, None))
    b.add(".")
    return b


def _reflexive(ctx: _Ctx, spec: _Spec) -> _Builder:
    """The boys near the girl hurt themselves ."""
    b, ref, bad_gender = _pronoun_subject(ctx, spec)
    _emit_verb(b, _verb_from(ctx.rng, REFLEXIVE_VERBS), ref, PAST if ctx.pair else _tense(ctx))
    _mark_pronoun(b, "refl", ref, bad_gender)
    if ctx.rng.random() < 0.2:
        b.add(ctx.rng.choice(MANNER_ADVERBS))
    b.add(".")
    return b


def _across_sentence(ctx: _Ctx, spec: _Spec) -> _Builder:
    """Mary smiled . She laughed ."""
    if not ctx.pair and ctx.rng.random() < 0.25:
        b = _Builder()
        ref = b.add_np(_subject(ctx, genders=(NEUTER,)))
        _add_pps(ctx, b, _free_specs(ctx, spec.attractors + spec.extra), ref)
        _predicate(ctx, b, ref, _tense(ctx))
        b.add(".")
        _continuation(ctx, b, _mark_pronoun(b, "subj", ref, None))
        b.add(".")
        return b
    b, ref, bad_gender = _pronoun_subject(ctx, spec)
    if ctx.pair:
        _emit_verb(b, _verb_from(ctx.rng, ANIMATE_INTRANSITIVE), ref, PAST)
        if ctx.rng.random() < 0.3:
            b.add(ctx.rng.choice(MANNER_ADVERBS))
    else:
        _predicate(ctx, b, ref, _tense(ctx))
    b.add(".")
    _continuation(ctx, b, _mark_pronoun(b, "subj", ref, bad_gender))
    b.add(".")
    return b


def _coordination(ctx: _Ctx, spec: _Spec) -> _Builder:
    """The boys laugh and like the keys . / The key is old , but the doors are new ."""
    b = _Builder()
    ref = b.add_np(_subject(ctx))
    tense = _tense(ctx)
    if ctx.rng.random() < 0.5:
        _add_pps(ctx, b, _intervener_specs(ctx, ref, spec), ref)
        _predicate(ctx, b, ref, tense)
        b.add("and")
        _predicate(ctx, b, ref, tense)
    else:
        _predicate(ctx, b, ref, tense)
        b.add(",", ctx.rng.choice(("and", "but")))
        second = b.add_np(_subject(ctx))
        _predicate(ctx, b, second, tense)
    b.add(".")
    return b


Construction = Callable[[_Ctx, _Spec], _Builder]

#: name -> (builder, agreement types, attractor counts in pair suites, training weight)
CONSTRUCTIONS: dict[str, tuple[Construction, tuple[str, ...], tuple[int, ...], float]] = {
    "simple": (_simple, ("number",), (0,), 8),
    "adverb": (_adverb, ("number",), (0,), 7),
    "adjectives": (_adjectives_construction, ("number",), (0,), 5),
    "pp": (_pp, ("number",), (0, 1, 2, 3, 4), 17),
    "subj_rel": (_subj_rel, ("number",), (0, 1, 2, 3, 4), 12),
    "obj_rel": (_obj_rel, ("number",), (0, 1, 2, 3, 4), 12),
    "pronoun": (_pronoun_construction, ("gender", "number"), (0, 1, 2, 3, 4), 40),
    "reflexive": (_reflexive, ("gender", "number"), (0, 1, 2, 3, 4), 36),
    "pronoun_across_sentence": (_across_sentence, ("gender", "number"), (0, 1, 2, 3, 4), 30),
}
TRAINING_ONLY: dict[str, tuple[Construction, float]] = {"coordination": (_coordination, 10)}
TRAIN_ATTRACTOR_WEIGHTS = (40, 25, 17, 11, 7)

# ---------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------

#: Default corpus sizes in lines (one sentence or two-sentence discourse per line).
TRAIN_SENTENCES = 40_000
VALID_SENTENCES = 2_000
TEST_SENTENCES = 2_000
SPLIT_SEED_OFFSETS = {"train": 1, "valid": 2, "test": 3}
#: Default agreement suites (written to data/default/ by scripts/make_default_corpus.py).
SUITE_PAIRS_PER_CELL = 40
HELDOUT_SUITE_PAIRS_PER_CELL = 20
SUITE_SEED = 0
HELDOUT_SUITE_SEED = 1


def _training_table() -> dict[str, tuple[Construction, float]]:
    table = {name: (fn, weight) for name, (fn, _, _, weight) in CONSTRUCTIONS.items()}
    return {**table, **TRAINING_ONLY}


def generate_structures(n: int, seed: int, *, heldout: bool = False) -> list[Sentence]:
    """``n`` training-style lines with their features (see :func:`generate_sentences`)."""
    rng = random.Random(seed)
    ctx = _Ctx(rng, HELDOUT_LEXICON if heldout else TRAIN_LEXICON, TRAIN_LEXICON, pair=False)
    table = _training_table()
    names, cum_weights = list(table), list(itertools.accumulate(w for _, w in table.values()))
    counts = range(len(TRAIN_ATTRACTOR_WEIGHTS))
    cum_attractors = list(itertools.accumulate(TRAIN_ATTRACTOR_WEIGHTS))
    out = []
    for _ in range(n):
        name = _weighted(rng, names, cum_weights)
        attractors = _weighted(rng, counts, cum_attractors)
        spec = _Spec(attractors, 1 if rng.random() < 0.3 else 0)
        out.append(table[name][0](ctx, spec).build(name))
    return out


def generate_sentences(n: int, seed: int, *, heldout: bool = False) -> list[str]:
    """``n`` grammatical lines, a seeded mix of all constructions.

    Weighted towards agreement: PPs and relative clauses with 0-4 attractors (mostly
    0-2), pronouns, reflexives, two-sentence discourses and coordination. With
    ``heldout=False`` no held-out noun or name appears anywhere; with ``heldout=True``
    every main-clause subject is a held-out item.
    """
    return [s.text for s in generate_structures(n, seed, heldout=heldout)]


def default_corpus(seed: int = 0) -> dict[str, list[str]]:
    """The default train/valid/test corpus, each split from its own derived seed.

    Sizes: 40,000 train lines (about 2.65 MB, 480k words) and 2,000 lines each for valid
    and test (about 130 KB each); the split seeds are ``1000 * seed + 1/2/3``. No held-out
    item appears in any split.
    """
    sizes = {"train": TRAIN_SENTENCES, "valid": VALID_SENTENCES, "test": TEST_SENTENCES}
    return {
        split: generate_sentences(size, 1000 * seed + SPLIT_SEED_OFFSETS[split])
        for split, size in sizes.items()
    }


def generate_cell(
    construction: str, attractors: int, n: int, seed: int, *, heldout: bool = False
) -> list[MinimalPair]:
    """``n`` distinct minimal pairs of one construction with exactly ``attractors`` attractors.

    Distance grows with the attractors and with random non-attractor PPs and adjectives;
    each pair reports it. Any attractor count works for ``pp``, ``subj_rel``, ``obj_rel``
    and the pronoun constructions (the suites use 0-4).
    """
    name, k = construction, attractors
    if name not in CONSTRUCTIONS:
        raise ValueError(f"unknown construction {name!r}; choose from {', '.join(CONSTRUCTIONS)}")
    if k not in CONSTRUCTIONS[name][2] and max(CONSTRUCTIONS[name][2]) == 0:
        raise ValueError(f"{name} has no attractors")
    build, agreements, _, _ = CONSTRUCTIONS[name]
    rng = random.Random(f"{seed}:{name}:{k}")
    subjects = HELDOUT_LEXICON if heldout else TRAIN_LEXICON
    ctx = _Ctx(rng, subjects, TRAIN_LEXICON, pair=True)
    pairs: list[MinimalPair] = []
    seen: set[str] = set()
    for _ in range(100 * n):
        if len(pairs) == n:
            break
        agreement = agreements[len(pairs) % len(agreements)]
        extra = rng.choice((0, 1, 2) if k == 0 else (0, 0, 1))
        builder = build(ctx, _Spec(k, extra, agreement))
        sentence = builder.build(name)
        if builder.target is None or builder.bad is None:
            raise AssertionError(f"{name}: no agreement marked in {sentence.text!r}")
        found = count_attractors(sentence, builder.target, "gender" if agreement == "gender" else "number")
        if found != k:
            raise AssertionError(f"{name}: {found} attractors instead of {k} in {sentence.text!r}")
        if sentence.text not in seen:
            seen.add(sentence.text)
            pairs.append(MinimalPair(sentence, builder.target, builder.bad, agreement, k))
    if len(pairs) < n:
        raise ValueError(f"could not make {n} distinct {name} pairs with {k} attractors")
    return pairs


def generate_pair_structures(n_per_cell: int, seed: int, *, heldout: bool = False) -> list[MinimalPair]:
    """Minimal pairs with their structures, ``n_per_cell`` per (construction, attractors)."""
    return [
        pair
        for name, (_, _, counts, _) in CONSTRUCTIONS.items()
        for k in counts
        for pair in generate_cell(name, k, n_per_cell, seed, heldout=heldout)
    ]


def generate_pairs(n_per_cell: int, seed: int, *, heldout: bool = False) -> list[dict]:
    """BLiMP-style minimal pairs; good and bad differ in exactly one word.

    Each cell (construction, attractors) has its own derived seed. Keys: sentence_good,
    sentence_bad, construction, attractors, distance, agreement, field, linguistics_term,
    UID and pairID.
    """
    pairs = generate_pair_structures(n_per_cell, seed, heldout=heldout)
    return [pair.to_dict(i) for i, pair in enumerate(pairs)]


def _train_noun(word: str) -> Noun:
    """A training-lexicon noun by its singular form."""
    for noun in TRAIN_LEXICON.nouns():
        if noun.singular == word:
            return noun
    raise LookupError(f"{word!r} is not a training noun")


def _np_words(word: str, number: str = SG, *adjectives: str) -> list[str]:
    noun = _train_noun(word)
    return [noun.form(number)] if noun.is_name else ["the", *adjectives, noun.form(number)]


def _prompt(words: Sequence[str], correct: str, wrong: str, what: str) -> dict:
    tokens = list(words)
    tokens[0] = _capitalise(tokens[0])
    if tokens[-1] == ".":
        correct, wrong = _capitalise(correct), _capitalise(wrong)
    return {"prompt": " ".join(tokens), "correct": correct, "wrong": wrong, "what": what}


def demo_prompts() -> list[dict]:
    """Hand-picked prompts of growing distance and attractors, from the training lexicon."""
    be, laugh, like = BE, VERBS["laugh"], VERBS["like"]
    smile, say, hurt = VERBS["smile"], VERBS["say"], VERBS["hurt"]

    def pron(case: str, number: str, gender: str) -> str:
        return pronoun(case, number, gender)

    return [
        _prompt(_np_words("key"), be.form(SG, PRESENT), be.form(PL, PRESENT), "number, adjacent"),
        _prompt(
            [*_np_words("key", PL), "to", *_np_words("cabinet")],
            be.form(PL, PRESENT),
            be.form(SG, PRESENT),
            "number, 1 attractor",
        ),
        _prompt(  # a verb the grammar puts after adverbs: sleep/sleeps there was ~0.001 vs 0.001
            [*_np_words("dog", PL, "old", "and", "tired"), "often"],
            HAVE.form(PL, PRESENT),
            HAVE.form(SG, PRESENT),
            "number, adjectives and adverb",
        ),
        _prompt(
            [*_np_words("author"), "that", *_np_words("guard", PL), like.form(PL, PRESENT)],
            laugh.form(SG, PRESENT),
            laugh.form(PL, PRESENT),
            "number, object relative clause, 1 attractor",
        ),
        _prompt(
            [*_np_words("key"), "to", *_np_words("cabinet", PL), "near", *_np_words("door", PL)],
            be.form(SG, PRESENT),
            be.form(PL, PRESENT),
            "number, 2 attractors",
        ),
        _prompt(
            [*_np_words("key", PL), "to", *_np_words("cabinet"), "near", *_np_words("door")]
            + ["behind", *_np_words("table")],
            be.form(PL, PRESENT),
            be.form(SG, PRESENT),
            "number, 3 attractors",
        ),
        _prompt(
            [*_np_words("queen"), say.form(SG, PAST), "that"],
            pron("subj", SG, FEM),
            pron("subj", SG, MASC),
            "gender",
        ),
        _prompt(
            [*_np_words("king"), "near", *_np_words("girl"), say.form(SG, PAST), "that"],
            pron("subj", SG, MASC),
            pron("subj", SG, FEM),
            "gender, 1 attractor",
        ),
        _prompt(
            [*_np_words("Mary"), smile.form(SG, PAST), "."],
            pron("subj", SG, FEM),
            pron("subj", SG, MASC),
            "gender, across sentences",
        ),
        _prompt(
            [*_np_words("boy", PL), hurt.form(PL, PAST)],
            pron("refl", PL, MASC),
            pron("refl", SG, MASC),
            "number, reflexive",
        ),
    ]


def corpus_text(lines: Iterable[str]) -> str:
    """One line per sentence, newline-terminated."""
    return "".join(line + "\n" for line in lines)


def jsonl_text(pairs: Iterable[dict]) -> str:
    """JSON Lines text, one pair per line, keys in generation order."""
    return "".join(json.dumps(pair, ensure_ascii=False) + "\n" for pair in pairs)


def write_jsonl(pairs: list[dict], path: str | Path) -> None:
    """Write pairs as JSON Lines (UTF-8, ``\\n`` line ends)."""
    Path(path).write_text(jsonl_text(pairs), encoding="utf-8", newline="\n")


def default_suites() -> dict[str, list[dict]]:
    """The committed suites: ``agreement_suite`` and ``agreement_suite_heldout``."""
    return {
        "agreement_suite": generate_pairs(SUITE_PAIRS_PER_CELL, SUITE_SEED),
        "agreement_suite_heldout": generate_pairs(
            HELDOUT_SUITE_PAIRS_PER_CELL, HELDOUT_SUITE_SEED, heldout=True
        ),
    }
