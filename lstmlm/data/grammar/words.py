"""Word lists of the agreement grammar and the features they carry.

Nouns come in four genders: things (neuter, ``it``), common-gender people and animals
(``author``, ``dog``: plural pronoun only), masculine and feminine (``king/queen``) and first
names (singular only). Verb classes hold base forms; a verb may sit in several classes.
"""

from __future__ import annotations

SG, PL = "sg", "pl"
MASC, FEM, COMMON, NEUTER = "m", "f", "c", "n"
ALL_GENDERS = (NEUTER, COMMON, MASC, FEM)
ANIMATE_GENDERS = (COMMON, MASC, FEM)
PRESENT, PAST = "present", "past"


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

PRONOUNS = {
    "subj": {MASC: "he", FEM: "she", NEUTER: "it", PL: "they"},
    "obj": {MASC: "him", FEM: "her", NEUTER: "it", PL: "them"},
    "refl": {MASC: "himself", FEM: "herself", NEUTER: "itself", PL: "themselves"},
    "poss": {MASC: "his", FEM: "her", NEUTER: "its", PL: "their"},
}
