"""Seeded generator of the example shop: an eco-supermarket with planted personas.

It behaves like a real shop: customers join throughout the three years and buy by a BG/NBD process (about half
never buy again), each order's total follows a Gamma-Gamma process, and the personas decide only what goes in
the basket. The exports carry the dirt of real ones at the rates of `DIRT` (cancelled and returned orders with
Spanish statuses, rare categories, missing names, buyers missing from customers.csv, duplicate lines, product
lines with blanks). truth.csv holds each customer's persona; truth.json the parameters, personas and dirt.

Everything is vectorised NumPy on integer codes; strings are made at the end with pyarrow compute, so a
million customers and ten million order lines take well under a minute. The same (customers, seed, as_of,
orders_format) always gives byte-identical files, and the orders are the same whichever format holds them.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

IntArray = npt.NDArray[np.integer[Any]]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
ProgressFn = Callable[[str], None]

LARGE_SHOP_CUSTOMERS = 100_000
"""From this many customers on, the shop has 20 categories, 5,200 products and 7 personas."""

HISTORY_DAYS = 3 * 365
SECONDS_PER_DAY = 86_400
CHUNK_ROWS = 1_000_000
SHOP_URL = "https://tienda.example"
BGNBD = {"r": 0.3, "alpha": 8.0, "a": 0.79, "b": 2.43}
"""How often customers buy (BG/NBD, time in weeks). Each customer's Poisson purchase rate is gamma(r, rate
alpha); after each repeat purchase they drop out for good with a probability drawn from beta(a, b). a and b are
CDNOW's (Fader, Hardie & Lee 2005); r and alpha give a similar mean rate (0.04 a week against CDNOW's 0.055)
with a thinner tail of heavy buyers, so that recording at most one purchase a day (see `_bgnbd_purchases`)
leaves the fit unbiased. About half of the customers never buy again, as in real e-commerce."""
GAMMA_GAMMA = {"p": 6.25, "q": 3.74, "gamma": 15.44}
"""What an order costs (Gamma-Gamma, euros): each order's total is gamma(p, rate nu) with the customer's nu drawn
from gamma(q, rate gamma); CDNOW's published fit, a mean order of about 35 euros."""
DIRT = {
    "cancelled_orders": 0.04,
    "returned_lines": 0.01,
    "duplicate_lines": 0.002,
    "rare_category_buyers": 0.003,
    "customers_without_first_name": 0.03,
    "customers_missing_from_export": 0.005,
    "products_with_a_blank_line": 0.02,
}
"""How dirty the exports are, as shares: of purchases cancelled (an extra order, status "cancelado"), of purchased
lines returned ("devuelto"), of lines written twice, of customers who bought one of the rare categories once, of
customers without a first name, of buyers left out of customers.csv, and of products given a second line in
products.csv with a blank name or price (after the complete one). Emails (3% missing or invalid) and consent
(80% given) are drawn as before."""
STATUSES = {"purchase": "completado", "return": "devuelto", "cancelled": "cancelado"}
"""The order statuses, in the shop's language."""
EXTRA_LINES_PER_CATEGORY = 0.1
"""Mean products beyond the first that an order holds of each category it touches."""
QUANTITY_SHARES = (0.62, 0.24, 0.09, 0.03, 0.01, 0.01)
"""How often a line holds 1, 2, ... 6 units."""
EMAIL_DOMAINS = ("example.com", "example.org", "example.net")

ORDER_COLUMNS = (
    "order_id",
    "customer_id",
    "ordered_at",
    "product_id",
    "quantity",
    "unit_price",
    "store_id",
    "status",
)
CUSTOMER_COLUMNS = (
    "customer_id",
    "email",
    "first_name",
    "last_name",
    "gender",
    "birth_date",
    "phone",
    "postal_code",
    "city",
    "country",
    "lat",
    "lon",
    "email_consent",
    "consent_at",
    "created_at",
    "language",
    "loyalty_card",
)
PRODUCT_COLUMNS = (
    "product_id",
    "name",
    "category",
    "brand",
    "price",
    "url",
    "image_url",
    "offer_price",
    "offer_from",
    "offer_to",
)
STORE_COLUMNS = ("store_id", "name", "address", "city", "postal_code", "lat", "lon")
TRUTH_COLUMNS = ("customer_id", "persona", "persona_name")


@dataclass(frozen=True)
class ShopFiles:
    """Where the generated shop lives and how big it is."""

    directory: Path
    customers: Path
    products: Path
    stores: Path
    orders: Path
    truth: Path
    truth_json: Path
    n_customers: int  # in truth.csv; customers.csv leaves out DIRT["customers_missing_from_export"] of them
    n_products: int
    n_order_lines: int
    n_orders: int
    personas: tuple[str, ...]


# --- The shop's fixed content --------------------------------------------------------------------

# city, store address and postal code, store lat/lon, city-centre lat/lon, weight of the city in customers
_STORES: tuple[tuple[str, str, str, float, float, float, float, float], ...] = (
    ("Madrid", "Calle de Alcalá, 120", "28009", 40.4233, -3.6756, 40.4168, -3.7038, 3.3),
    ("Barcelona", "Carrer de Mallorca, 214", "08008", 41.3917, 2.1603, 41.3874, 2.1686, 1.6),
    ("Valencia", "Carrer de Russafa, 35", "46004", 39.4655, -0.3752, 39.4699, -0.3763, 0.8),
    ("Sevilla", "Calle Asunción, 18", "41011", 37.3781, -5.9967, 37.3891, -5.9845, 0.7),
    ("Zaragoza", "Paseo de Sagasta, 40", "50006", 41.6405, -0.8843, 41.6488, -0.8891, 0.67),
    ("Málaga", "Calle Larios, 6", "29005", 36.7196, -4.4226, 36.7213, -4.4214, 0.58),
    ("Bilbao", "Gran Vía de Don Diego López de Haro, 52", "48011", 43.2614, -2.9400, 43.2630, -2.9350, 0.35),
    ("Alicante", "Avenida de Maisonnave, 27", "03003", 38.3434, -0.4940, 38.3452, -0.4810, 0.34),
    ("Córdoba", "Avenida del Gran Capitán, 11", "14008", 37.8895, -4.7830, 37.8882, -4.7794, 0.32),
    ("Valladolid", "Calle de Santiago, 22", "47001", 41.6497, -4.7286, 41.6523, -4.7245, 0.30),
    ("Vigo", "Rúa do Príncipe, 30", "36202", 42.2370, -8.7230, 42.2406, -8.7207, 0.29),
    ("Gijón", "Calle Corrida, 15", "33206", 43.5420, -5.6620, 43.5322, -5.6611, 0.27),
)


@dataclass(frozen=True)
class _Category:
    """A product category: the product kinds, formats and brands its names are made of, and a price range."""

    name: str
    kinds: tuple[str, ...]
    formats: tuple[str, ...]
    brands: tuple[str, ...]
    min_price: float
    max_price: float


_FOOD_FORMATS = ("250 g", "500 g", "1 kg", "pack de 3", "formato familiar", "sin gluten")
_SIZE_FORMATS = ("pequeño", "mediano", "grande", "pack de 2", "pack ahorro", "edición limitada")

_BASE_CATEGORIES: tuple[_Category, ...] = (
    _Category(
        "Supermercado ECO",
        (
            "Aceite de oliva virgen extra",
            "Arroz integral",
            "Pasta de espelta",
            "Garbanzos cocidos",
            "Tomate triturado",
            "Café molido",
            "Galletas de avena",
            "Miel de romero",
            "Leche de avena",
            "Chocolate negro",
            "Lentejas pardinas",
            "Muesli crujiente",
        ),
        _FOOD_FORMATS,
        ("Terra Viva", "Bio Sol", "El Granero", "La Molienda", "Naturalia"),
        1.2,
        14.0,
    ),
    _Category(
        "Huerto ECO",
        (
            "Semillas de tomate cherry",
            "Semillas de lechuga",
            "Plantel de pimiento",
            "Plantel de calabacín",
            "Sustrato para huerto",
            "Compost orgánico",
            "Humus de lombriz",
            "Mesa de cultivo",
            "Kit de riego por goteo",
            "Azada de jardín",
            "Tutores de bambú",
            "Jabón potásico",
        ),
        ("básico", "premium", "pack de 2", "pack de 5", "formato grande", "huerto urbano"),
        ("Huerta Viva", "Terra Viva", "Verde Jardín", "El Bancal", "Semillas del Sur"),
        2.0,
        35.0,
    ),
    _Category(
        "Bebé y niño",
        (
            "Pañales ecológicos",
            "Toallitas de algodón",
            "Papilla de cereales",
            "Potito de verduras",
            "Body de algodón orgánico",
            "Crema del pañal",
            "Champú infantil",
            "Juguete de madera",
            "Biberón de vidrio",
            "Mordedor natural",
            "Puzle de madera",
            "Bolsita de fruta",
        ),
        ("0-6 meses", "6-12 meses", "12-24 meses", "pack de 2", "pack ahorro", "edición viaje"),
        ("EcoNido", "Pequeño Brote", "Bio Sol", "Mamá Tierra", "Cigüeña Verde"),
        3.0,
        40.0,
    ),
    _Category(
        "Hogar",
        (
            "Detergente ecológico",
            "Lavavajillas concentrado",
            "Bayetas de celulosa",
            "Velas de soja",
            "Ambientador natural",
            "Cesta de mimbre",
            "Servilletas de lino",
            "Bolsas compostables",
            "Jabón de Marsella",
            "Cepillo de bambú",
            "Limpiador multiusos",
            "Paños de cocina",
        ),
        ("1 L", "3 L", "pack de 3", "pack de 6", "recambio", "aroma lavanda"),
        ("Casa Clara", "Hogar Verde", "Terra Viva", "La Colmena", "Limpio y Natural"),
        2.0,
        30.0,
    ),
    _Category(
        "Jardín y exterior",
        (
            "Manguera extensible",
            "Tijeras de podar",
            "Maceta de barro",
            "Jardinera de madera",
            "Cortacésped manual",
            "Farolillo solar",
            "Banco de jardín",
            "Comedero para pájaros",
            "Semillas de césped",
            "Guantes de jardinería",
            "Regadera metálica",
            "Hamaca de algodón",
        ),
        _SIZE_FORMATS,
        ("Verde Jardín", "El Rincón", "Solana", "Hogar Verde", "Huerta Viva"),
        5.0,
        150.0,
    ),
    _Category(
        "Plantas",
        (
            "Olivo",
            "Lavanda",
            "Romero",
            "Monstera",
            "Potus",
            "Ficus",
            "Orquídea",
            "Cactus",
            "Geranio",
            "Buganvilla",
            "Aloe vera",
            "Helecho",
        ),
        ("maceta 12 cm", "maceta 14 cm", "maceta 17 cm", "maceta 21 cm", "en cesta", "pack de 3"),
        ("Vivero del Sur", "Verde Jardín", "Flor de Campo", "Raíces", "Jardines de Córdoba"),
        3.0,
        60.0,
    ),
)


def _split(text: str) -> tuple[str, ...]:
    """The items of a ';'-separated list, for long lists of names."""
    return tuple(text.split(";"))


def _extra(name: str, kinds: str, formats: Sequence[str], brands: str, low: float, high: float) -> _Category:
    """Build one of the large shop's extra categories from ';'-separated kinds and brands."""
    return _Category(name, _split(kinds), tuple(formats), _split(brands), low, high)


_EXTRA_CATEGORIES: tuple[_Category, ...] = (
    _extra(
        "Cosmética natural",
        "Crema facial hidratante;Champú sólido;Desodorante natural;Aceite de rosa mosqueta;Jabón de aloe;"
        "Bálsamo labial;Gel de ducha;Protector solar mineral;Pasta de dientes;Sérum de vitamina C",
        ("50 ml", "100 ml", "250 ml", "pack de 2", "piel sensible", "sin perfume"),
        "Mamá Tierra;Flor de Campo;Alma Pura;Bio Sol;Aromas del Sur",
        3.0,
        35.0,
    ),
    _extra(
        "Mascotas",
        "Pienso para perro;Pienso para gato;Snacks naturales;Arena vegetal;Champú para mascotas;"
        "Juguete de cuerda;Cama de algodón;Comedero de bambú;Collar de cáñamo;Premios de pollo",
        ("pequeño", "mediano", "grande", "1 kg", "3 kg", "pack ahorro"),
        "Huellas;Campo Abierto;Terra Viva;Peludos;Bigotes",
        2.0,
        45.0,
    ),
    _extra(
        "Bebidas",
        "Zumo de naranja;Kombucha;Vino tinto ecológico;Cerveza artesana;Agua con gas;Té verde;"
        "Infusión de manzanilla;Bebida de almendra;Sidra natural;Refresco de limón",
        ("33 cl", "75 cl", "1 L", "pack de 6", "sin azúcar", "de temporada"),
        "Bio Sol;Viñas del Sol;La Fuente;El Lagar;Naturalia",
        1.0,
        20.0,
    ),
    _extra(
        "Panadería",
        "Pan de masa madre;Pan de centeno;Pan de espelta;Magdalenas;Cruasán de mantequilla;"
        "Bizcocho de limón;Pan de molde integral;Tostadas de trigo;Rosquillas;Picos de pan",
        ("250 g", "500 g", "pack de 4", "pack de 6", "sin gluten", "integral"),
        "El Horno de Leña;La Molienda;Trigo Limpio;El Granero;Espiga de Oro",
        1.0,
        8.0,
    ),
    _extra(
        "Frutas y verduras",
        "Manzana golden;Plátano de Canarias;Naranja de mesa;Tomate de rama;Patata;Cebolla;Zanahoria;"
        "Aguacate;Calabacín;Fresas;Pimiento rojo;Lechuga romana",
        ("500 g", "1 kg", "2 kg", "malla", "bandeja", "a granel"),
        "Huerta Viva;Campo Abierto;Frutas Núñez;El Bancal;Vega Baja",
        1.0,
        8.0,
    ),
    _extra(
        "Lácteos y huevos",
        "Yogur natural;Huevos camperos;Queso curado de oveja;Kéfir;Mantequilla;Leche entera;Requesón;"
        "Queso fresco de cabra;Nata para cocinar;Cuajada",
        ("pack de 2", "pack de 4", "pack de 6", "250 g", "500 g", "1 L"),
        "Bio Sol;La Granja;Pastos del Norte;Campo Abierto;Lácteos Peña",
        1.0,
        15.0,
    ),
    _extra(
        "Carne y pescado",
        "Pechuga de pollo;Hamburguesa de ternera;Lomo de cerdo;Salmón ahumado;Merluza;Chorizo;"
        "Jamón cocido;Albóndigas;Atún en aceite;Sardinas en conserva",
        ("250 g", "500 g", "1 kg", "pack de 2", "bandeja familiar", "loncheado"),
        "La Granja;Pastos del Norte;Mar Cantábrico;Dehesa Real;Lonja Gallega",
        2.0,
        30.0,
    ),
    _extra(
        "Limpieza ecológica",
        "Jabón lavavajillas;Suavizante;Limpiacristales;Quitagrasas;Blanqueador ecológico;"
        "Limpiador de baño;Estropajo vegetal;Bicarbonato;Vinagre de limpieza;Percarbonato",
        ("500 ml", "1 L", "3 L", "pack de 3", "recambio", "aroma cítrico"),
        "Casa Clara;Hogar Verde;Limpio y Natural;La Colmena;Brillo Verde",
        1.0,
        15.0,
    ),
    _extra(
        "Despensa",
        "Harina de trigo;Azúcar de caña;Sal marina;Especias variadas;Copos de avena;Quinoa;Frutos secos;"
        "Salsa de tomate;Vinagre de manzana;Caldo de verduras;Mermelada de fresa;Tahín",
        _FOOD_FORMATS,
        "Terra Viva;El Granero;La Molienda;Naturalia;Sabores de Antaño",
        1.0,
        12.0,
    ),
    _extra(
        "Congelados",
        "Guisantes congelados;Pizza de verduras;Espinacas congeladas;Helado de vainilla;Croquetas caseras;"
        "Menestra de verduras;Gambas peladas;Lasaña vegetal;Empanadillas;Frutos rojos",
        ("300 g", "400 g", "1 kg", "pack de 2", "formato familiar", "sin gluten"),
        "Frío Natural;Mar Cantábrico;Bio Sol;La Granja;Polo Norte",
        2.0,
        15.0,
    ),
    _extra(
        "Herbolario",
        "Infusión relajante;Jalea real;Propóleo;Levadura de cerveza;Cúrcuma en cápsulas;Espirulina;"
        "Aceite esencial de lavanda;Valeriana;Equinácea;Magnesio",
        ("30 cápsulas", "60 cápsulas", "100 ml", "250 g", "pack de 2", "formato ahorro"),
        "Alma Pura;Raíces;Flor de Campo;Herbes del Molí;Botica Natural",
        4.0,
        30.0,
    ),
    _extra(
        "Textil orgánico",
        "Camiseta de algodón orgánico;Calcetines de bambú;Toalla de lino;Sábanas de algodón;"
        "Pijama infantil;Bolsa de tela;Delantal de cocina;Manta de lana;Gorro de punto;Pañuelo de seda",
        ("talla S", "talla M", "talla L", "talla XL", "pack de 2", "color crudo"),
        "EcoNido;Hilo Verde;Alma Pura;Lana y Lino;Algodón Claro",
        6.0,
        80.0,
    ),
    _extra(
        "Libros y papelería",
        "Libro de cocina vegana;Guía del huerto urbano;Cuaderno reciclado;Lápices de colores;"
        "Agenda ecológica;Cuento infantil;Calendario lunar de siembra;Papel de regalo kraft;"
        "Bolígrafo de bambú;Manual de jardinería",
        ("tapa blanda", "tapa dura", "edición de bolsillo", "pack de 3", "edición ilustrada", "A5"),
        "Editorial Raíz;Papel Vivo;Hilo Verde;Pequeño Brote;Tinta Verde",
        2.0,
        30.0,
    ),
    _extra(
        "Deporte y bienestar",
        "Esterilla de yoga;Botella de acero;Barrita energética;Proteína vegetal;Bloque de corcho;"
        "Rodillo de masaje;Cinta elástica;Bebida isotónica;Comba de saltar;Mochila reciclada",
        _SIZE_FORMATS,
        "Alma Pura;Campo Abierto;Movimiento;Solana;Cumbre",
        2.0,
        60.0,
    ),
)


_RARE_FORMATS = (
    "talla S",
    "talla M",
    "talla L",
    "pequeño",
    "mediano",
    "grande",
    "pack de 2",
    "edición 2026",
    "gama alta",
)
_RARE_CATEGORIES: tuple[_Category, ...] = (
    _extra(
        "Bicicletas eléctricas",
        "Bicicleta eléctrica urbana;Bicicleta eléctrica plegable;Bicicleta de carga;Batería de repuesto;"
        "Cargador rápido;Alforjas de lona",
        _RARE_FORMATS,
        "Cumbre;Movimiento;Ruta Verde;Pedal Libre;Rueda Sur",
        40.0,
        1800.0,
    ),
    _extra(
        "Menaje de cobre",
        "Cazo de cobre;Sartén de cobre;Olla de cobre;Cafetera de cobre;Tetera de cobre;Cacerola de cobre",
        _RARE_FORMATS,
        "Casa Clara;Forja Antigua;El Caldero;Cobre Vivo;La Fragua",
        20.0,
        300.0,
    ),
)
"""Categories no persona buys: a few customers buy one of them once (DIRT["rare_category_buyers"])."""


@dataclass(frozen=True)
class _Persona:
    """A planted persona: its share of customers, basket size and category weights.

    Categories not named get only a small background weight. Persona numbers follow the order of
    `_PERSONAS`, largest first, so that cluster ids ordered by size line up with them.
    """

    name: str
    small_share: float  # share of customers in the 6-category shop (0: absent)
    large_share: float  # share in the 20-category shop
    min_categories: int  # distinct categories every order touches
    extra_categories: float  # mean distinct categories per order beyond min_categories
    weights: dict[str, float]


_PERSONAS: tuple[_Persona, ...] = (
    _Persona(
        "Sólo supermercado",
        0.30,
        0.24,
        1,
        0.1,
        {
            "Supermercado ECO": 10.0,
            "Despensa": 1.6,
            "Lácteos y huevos": 1.4,
            "Panadería": 1.2,
            "Carne y pescado": 1.0,
        },
    ),
    _Persona(
        "Supermercado + Huerto + Bebé",
        0.25,
        0.19,
        2,
        0.5,
        {
            "Supermercado ECO": 3.4,
            "Huerto ECO": 3.0,
            "Bebé y niño": 3.0,
            "Frutas y verduras": 1.0,
            "Bebidas": 0.8,
        },
    ),
    _Persona(
        "Huerto + Plantas + Supermercado",
        0.20,
        0.16,
        2,
        0.5,
        {"Huerto ECO": 4.0, "Plantas": 3.4, "Supermercado ECO": 2.4, "Herbolario": 1.0},
    ),
    _Persona("Sólo huerto", 0.15, 0.13, 1, 0.1, {"Huerto ECO": 10.0, "Frutas y verduras": 1.2}),
    _Persona(
        "Global",
        0.10,
        0.11,
        2,
        1.5,
        {
            "Supermercado ECO": 2.0,
            "Huerto ECO": 1.8,
            "Bebé y niño": 1.6,
            "Hogar": 1.6,
            "Jardín y exterior": 1.5,
            "Plantas": 1.5,
            "Cosmética natural": 0.8,
            "Mascotas": 0.8,
            "Deporte y bienestar": 0.8,
            "Libros y papelería": 0.8,
            "Congelados": 0.8,
        },
    ),
    _Persona(
        "Hogar y jardín",
        0.0,
        0.09,
        2,
        0.4,
        {"Hogar": 4.0, "Jardín y exterior": 3.6, "Limpieza ecológica": 1.6, "Mascotas": 1.0, "Plantas": 0.8},
    ),
    _Persona(
        "Bebé y niño",
        0.0,
        0.08,
        1,
        0.5,
        {"Bebé y niño": 6.0, "Textil orgánico": 1.4, "Cosmética natural": 1.2, "Supermercado ECO": 0.8},
    ),
)
_SMALL_PERSONAS = 5
_BACKGROUND_WEIGHT = 0.15
"""Total weight spread evenly over every category, so each persona sometimes buys anything."""

_FEMALE_NAMES = _split(
    "María;Lucía;Carmen;Ana;Laura;Marta;Begoña;Nuria;Sofía;Paula;Elena;Cristina;Raquel;Inés;Pilar;Rocío;"
    "Ainhoa;Montserrat;Irene;Noelia;Verónica;Alba;Julia;Ángela;Mónica;Beatriz;Silvia;Teresa;Itziar;Núria"
)
_MALE_NAMES = _split(
    "José;Antonio;Manuel;Francisco;Javier;David;Daniel;Carlos;Jesús;Alejandro;Miguel;Rafael;Pablo;Sergio;"
    "Álvaro;Adrián;Íñigo;Jorge;Andrés;Rubén;Óscar;Ramón;Joaquín;Víctor;Hugo;Jordi;Iker;Martín;Tomás;Gonzalo"
)
_SURNAMES = _split(
    "García;Fernández;González;Rodríguez;López;Martínez;Sánchez;Pérez;Gómez;Martín;Jiménez;Ruiz;Hernández;"
    "Díaz;Moreno;Muñoz;Álvarez;Romero;Alonso;Gutiérrez;Navarro;Torres;Domínguez;Vázquez;Ramos;Gil;Ramírez;"
    "Serrano;Blanco;Molina;Morales;Suárez;Ortega;Delgado;Castro;Ortiz;Rubio;Marín;Sanz;Núñez;Iglesias;"
    "Medina;Garrido;Cortés;Castillo;Santos;Lozano;Guerrero;Cano;Prieto;Méndez;Peña;Calvo;Cruz;Gallego;"
    "Vidal;León;Márquez;Herrera;Ibáñez;Aguirre;Echeverría"
)
_INVALID_EMAILS = ("sin-email", "no tiene", "pendiente@", "@example.com")
_LOYALTY_TIERS = ("Sin tarjeta", "Básica", "Plata", "Oro")
_CATALAN_SPEAKERS = {"Barcelona": 0.35, "Valencia": 0.08, "Alicante": 0.08}
"""Share of customers who read their email in Catalan ("ca"), per city; 1% elsewhere."""


# --- Small helpers ---------------------------------------------------------------------------------------


def _ascii_slug(text: str) -> str:
    """Lower-case ASCII form of a name for an email address: 'Íñigo' -> 'inigo'."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower().replace(" ", "")


def _zipf_weights(n: int, exponent: float = 0.8) -> FloatArray:
    """Normalised popularity weights for n ranked items, the first the most popular."""
    weights: FloatArray = 1.0 / np.arange(1, n + 1, dtype=np.float64) ** exponent
    normalised: FloatArray = weights / weights.sum()
    return normalised


def _sample_rows(rng: np.random.Generator, cdf_rows: FloatArray, rows: IntArray) -> IntArray:
    """Draw one column per entry of `rows` from the row-wise cumulative distributions `cdf_rows`.

    The rows are laid end to end (row r shifted by r), so a single searchsorted serves every row.
    """
    n_rows, n_cols = cdf_rows.shape
    flat = (cdf_rows + np.arange(n_rows, dtype=np.float64)[:, None]).ravel()
    flat[n_cols - 1 :: n_cols] = np.arange(1, n_rows + 1, dtype=np.float64)  # each row ends exactly at r + 1
    draws = rows + rng.random(rows.size)
    picked: IntArray = np.searchsorted(flat, draws, side="right") - rows * n_cols
    column: IntArray = np.minimum(picked, n_cols - 1).astype(np.int64)
    return column


def _basket_categories(
    rng: np.random.Generator, persona_probs: FloatArray, order_persona: IntArray, per_order: IntArray
) -> IntArray:
    """Each order's distinct categories, drawn without replacement from its persona's distribution.

    Exponential clocks (the same law as Gumbel top-k): an order of m categories takes the m smallest
    Exp(1) / p. Orders of one category take a single plain draw. The result is grouped by order.
    """
    n_categories = persona_probs.shape[1]
    first_slot = np.cumsum(per_order) - per_order
    picked = np.empty(int(per_order.sum()), dtype=np.int64)
    single = np.flatnonzero(per_order == 1)
    picked[first_slot[single]] = _sample_rows(rng, np.cumsum(persona_probs, axis=1), order_persona[single])
    several = np.flatnonzero(per_order > 1)
    probs = persona_probs.astype(np.float32)
    for start in range(0, several.size, CHUNK_ROWS // 4):
        rows = several[start : start + CHUNK_ROWS // 4]
        clocks = (
            rng.standard_exponential((rows.size, n_categories), dtype=np.float32) / probs[order_persona[rows]]
        )
        ranked = np.argsort(clocks, axis=1)
        wanted = np.arange(n_categories) < per_order[rows, None]
        slots = np.repeat(first_slot[rows], per_order[rows])
        slots += np.arange(slots.size) - np.repeat(
            np.cumsum(per_order[rows]) - per_order[rows], per_order[rows]
        )
        picked[slots] = ranked[wanted]
    return picked


def _text(values: IntArray, width: int = 0) -> Any:
    """Integers as an Arrow string array, left-padded with zeros to `width`."""
    strings = pa.array(values, type=pa.int64()).cast(pa.string())
    return pc.utf8_lpad(strings, width, "0") if width else strings


def _ids(prefix: str, numbers: IntArray, width: int) -> Any:
    """Identifiers such as C0000042 from integer numbers."""
    return pc.binary_join_element_wise(prefix, _text(numbers, width), "")


def _fixed(scaled: IntArray, decimals: int) -> Any:
    """Fixed-point text ('-3.703800', '12.49') from integers scaled by 10**decimals."""
    factor = 10**decimals
    magnitude = np.abs(scaled)
    sign = pa.array(["", "-"]).take(pa.array((scaled < 0).astype(np.int8)))
    return pc.binary_join_element_wise(
        sign, _text(magnitude // factor), ".", _text(magnitude % factor, decimals), ""
    )


def _timestamps(seconds: IntArray) -> Any:
    """Epoch seconds as an Arrow timestamp[s] array."""
    return pa.array(seconds, type=pa.timestamp("s"))


def _dates(days: IntArray) -> Any:
    """Epoch days as an Arrow date32 array."""
    return pa.array(days.astype(np.int32), type=pa.date32())


def _masked(array: Any, missing: BoolArray) -> Any:
    """The Arrow array with nulls where `missing` is true (written as empty CSV fields)."""
    return pc.if_else(pa.array(missing), pa.scalar(None, array.type), array)


def _csv_field(column: Any) -> Any:
    """A column as CSV text: quoted only where needed (comma, quote, line break), quotes doubled."""
    text = column if pa.types.is_string(column.type) else column.cast(pa.string())
    needs_quotes = pc.match_substring_regex(text, r'[",\r\n]')
    if not pc.any(needs_quotes).as_py():
        return text
    quoted = pc.binary_join_element_wise('"', pc.replace_substring(text, '"', '""'), '"', "")
    return pc.if_else(needs_quotes, quoted, text)


def _string_bytes(lines: Any) -> memoryview:
    """The concatenated UTF-8 bytes of an Arrow string array without nulls (no per-row copy)."""
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)[lines.offset : lines.offset + len(lines) + 1]
    return memoryview(lines.buffers()[2])[int(offsets[0]) : int(offsets[-1])]


def _write_csv(path: Path, header: Sequence[str], columns: Sequence[Any]) -> None:
    """Write columns as UTF-8 CSV: a header, commas, minimal quoting, empty fields for nulls."""
    n_rows = len(columns[0])
    with path.open("wb") as out:
        out.write((",".join(header) + "\n").encode("utf-8"))
        for start in range(0, n_rows, CHUNK_ROWS):
            fields = [_csv_field(column.slice(start, CHUNK_ROWS)) for column in columns]
            lines = pc.binary_join_element_wise(*fields, ",", null_handling="replace", null_replacement="")
            lines = pc.binary_join_element_wise(lines, "", "\n")
            out.write(_string_bytes(lines))


# --- The parts of the shop -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Products:
    """The catalogue as integer codes, plus its Arrow id strings."""

    ids: Any
    category: IntArray
    price_cents: IntArray
    offer_cents: IntArray  # equal to price_cents when not on offer
    on_offer: BoolArray
    offer_from: IntArray  # epoch days
    offer_to: IntArray
    category_cdf: FloatArray  # categories x products-within-category popularity
    category_start: IntArray
    blank_names: int  # products with a second line whose name is blank
    blank_prices: int  # ... whose price is blank


@dataclass(frozen=True)
class _Customers:
    """What the orders need to know of each customer."""

    ids: Any
    persona: IntArray
    home_store: IntArray  # the store of the customer's city, where they usually shop
    n_orders: IntArray  # purchases per customer
    purchase_customer: IntArray  # per purchase, grouped by customer
    purchase_at: IntArray  # per purchase, epoch seconds, in time order within each customer
    without_first_name: int
    missing_from_export: int


def _bgnbd_purchases(rng: np.random.Generator, join_at: IntArray, end_at: int) -> tuple[IntArray, IntArray]:
    """Every purchase of a BG/NBD process: the first at `join_at`, then Poisson purchases at the customer's
    gamma rate until `end_at` or until they drop out (with their beta probability, after a repeat purchase).

    Returns (customer, epoch seconds) per purchase, grouped by customer and in time order within each. One
    vectorised round per purchase number: the rounds shrink as customers stop or drop out.
    """
    n = join_at.size
    seconds_per_week = 7.0 * SECONDS_PER_DAY
    rate = rng.gamma(BGNBD["r"], 1.0 / BGNBD["alpha"], n) / seconds_per_week
    dropout = rng.beta(BGNBD["a"], BGNBD["b"], n)
    customers = [np.arange(n, dtype=np.int64)]
    times = [join_at.astype(np.int64)]
    last = join_at.astype(np.float64)
    last_day = join_at // SECONDS_PER_DAY
    active = np.flatnonzero(rate > 0)
    while active.size:
        at = last[active] + rng.standard_exponential(active.size) / rate[active]
        last[active] = at
        # Analyses count one purchase per customer and day, as the papers do: a purchase on the day of the
        # previous one is recorded on the next day, so none is lost to the day grid.
        recorded = np.floor(np.minimum(at, end_at)).astype(np.int64)
        recorded += np.maximum(0, last_day[active] + 1 - recorded // SECONDS_PER_DAY) * SECONDS_PER_DAY
        bought = (at < end_at) & (recorded < end_at)
        active, recorded = active[bought], recorded[bought]
        last_day[active] = recorded // SECONDS_PER_DAY
        customers.append(active)
        times.append(recorded)
        active = active[rng.random(active.size) >= dropout[active]]
    customer = np.concatenate(customers)
    purchase_at = np.concatenate(times)
    by_customer = np.lexsort((purchase_at, customer))
    return customer[by_customer], purchase_at[by_customer]


def _make_stores(path: Path) -> Any:
    """Write stores.csv and return the store ids."""
    store_ids = _ids("T", np.arange(1, len(_STORES) + 1, dtype=np.int64), 2)
    columns = [
        store_ids,
        pa.array([f"Mercado Verde {s[0]}" for s in _STORES]),
        pa.array([s[1] for s in _STORES]),
        pa.array([s[0] for s in _STORES]),
        pa.array([s[2] for s in _STORES]),
        _fixed(np.array([round(s[3] * 1e6) for s in _STORES], dtype=np.int64), 6),
        _fixed(np.array([round(s[4] * 1e6) for s in _STORES], dtype=np.int64), 6),
    ]
    _write_csv(path, STORE_COLUMNS, columns)
    return store_ids


def _make_products(
    path: Path, rng: np.random.Generator, categories: Sequence[_Category], per_category: int, as_of_day: int
) -> _Products:
    """Write products.csv: per category, distinct kind x brand x format names, prices and ~15% offers."""
    names: list[str] = []
    brands: list[str] = []
    category_of: list[int] = []
    low_high: list[tuple[float, float]] = []
    for code, category in enumerate(categories):
        combos = len(category.kinds) * len(category.brands) * len(category.formats)
        if combos < per_category:
            raise ValueError(f"category {category.name!r} can name only {combos} products")
        for combo in rng.permutation(combos)[:per_category]:
            kind, rest = divmod(int(combo), len(category.brands) * len(category.formats))
            brand, fmt = divmod(rest, len(category.formats))
            names.append(f"{category.kinds[kind]} {category.brands[brand]} {category.formats[fmt]}")
            brands.append(category.brands[brand])
            category_of.append(code)
            low_high.append((category.min_price, category.max_price))
    n_products = len(names)
    bounds = np.log(np.array(low_high, dtype=np.float64))
    price = np.exp(bounds[:, 0] + rng.random(n_products) * (bounds[:, 1] - bounds[:, 0]))
    price_cents = (np.floor(price * 10).astype(np.int64) * 10 + 9).astype(np.int64)  # 3.49, 12.99...

    product_category = np.array(category_of, dtype=np.int64)
    on_offer = np.zeros(n_products, dtype=np.bool_)
    n_offers = max(1, round(0.15 * per_category))
    for code in range(len(categories)):
        on_offer[code * per_category + rng.permutation(per_category)[:n_offers]] = True
    discount = 0.10 + 0.30 * rng.random(n_products)
    offer_cents = np.where(
        on_offer, np.minimum(np.round(price_cents * (1 - discount)), price_cents - 1), price_cents
    )
    offer_cents = offer_cents.astype(np.int64)
    current = rng.random(n_products) < 0.85
    offer_from = np.where(
        current, as_of_day - rng.integers(0, 21, n_products), as_of_day - rng.integers(40, 120, n_products)
    )
    offer_to = np.where(
        current, as_of_day + rng.integers(1, 31, n_products), offer_from + rng.integers(7, 31, n_products)
    )

    numbers = np.arange(1, n_products + 1, dtype=np.int64)
    ids = _ids("PR", numbers, 5)
    no_offer = ~on_offer
    columns = [
        ids,
        pa.array(names),
        pa.array([categories[c].name for c in category_of]),
        pa.array(brands),
        _fixed(price_cents, 2),
        pc.binary_join_element_wise(f"{SHOP_URL}/p/", ids, ""),
        pc.binary_join_element_wise(f"{SHOP_URL}/img/", ids, ".jpg", ""),
        _masked(_fixed(offer_cents, 2), no_offer),
        _masked(_dates(offer_from), no_offer),
        _masked(_dates(offer_to), no_offer),
    ]
    # Some products get a second line after the complete one, with a blank name or a blank price, as in an
    # export made from order lines.
    blank = np.flatnonzero(rng.random(n_products) < DIRT["products_with_a_blank_line"])
    blank_name = rng.random(blank.size) < 0.5
    repeated = pa.array(blank)
    extra_rows = [column.take(repeated) for column in columns]
    extra_rows[1] = _masked(extra_rows[1], blank_name)
    extra_rows[4] = _masked(extra_rows[4], ~blank_name)
    _write_csv(
        path, PRODUCT_COLUMNS, [pa.concat_arrays([a, b]) for a, b in zip(columns, extra_rows, strict=True)]
    )

    popularity = np.tile(np.cumsum(_zipf_weights(per_category)), (len(categories), 1))
    return _Products(
        ids=ids,
        category=product_category,
        price_cents=price_cents,
        offer_cents=offer_cents,
        on_offer=on_offer,
        offer_from=offer_from.astype(np.int64),
        offer_to=offer_to.astype(np.int64),
        category_cdf=popularity,
        category_start=np.arange(len(categories), dtype=np.int64) * per_category,
        blank_names=int(blank_name.sum()),
        blank_prices=int((~blank_name).sum()),
    )


def _persona_matrix(categories: Sequence[_Category], k: int) -> FloatArray:
    """Each persona's category distribution, which its orders' baskets are drawn from (k x categories)."""
    index = {category.name: i for i, category in enumerate(categories)}
    matrix: FloatArray = np.full((k, len(categories)), _BACKGROUND_WEIGHT / len(categories))
    for row, persona in enumerate(_PERSONAS[:k]):
        for name, weight in persona.weights.items():
            if name in index:
                matrix[row, index[name]] += weight
    probabilities: FloatArray = matrix / matrix.sum(axis=1, keepdims=True)
    return probabilities


def _persona_sizes(n_customers: int, shares: Sequence[float]) -> IntArray:
    """Exact, unequal persona sizes from shares; the remainder goes to the largest persona."""
    share = np.array(shares, dtype=np.float64) / sum(shares)
    sizes = np.floor(share * n_customers).astype(np.int64)
    sizes[0] += n_customers - sizes.sum()
    return sizes


def _make_customers(
    customers_path: Path,
    truth_path: Path,
    rng: np.random.Generator,
    n_customers: int,
    k: int,
    large: bool,
    as_of_day: int,
) -> _Customers:
    """Write customers.csv and truth.csv; return what the orders are drawn from."""
    n = n_customers
    numbers = np.arange(1, n + 1, dtype=np.int64)
    ids = _ids("C", numbers, max(7, len(str(n))))

    shares = [p.large_share if large else p.small_share for p in _PERSONAS[:k]]
    persona = rng.permutation(np.repeat(np.arange(k, dtype=np.int64), _persona_sizes(n, shares)))
    persona_names = pa.array([p.name for p in _PERSONAS[:k]])
    _write_csv(
        truth_path,
        TRUTH_COLUMNS,
        [ids, _text(persona + 1), persona_names.take(pa.array(persona))],
    )

    # Where they live: a store's city, 0-15 km from its centre.
    city_weight = np.array([s[7] for s in _STORES])
    store = rng.choice(len(_STORES), size=n, p=city_weight / city_weight.sum()).astype(np.int64)
    centre_lat = np.array([s[5] for s in _STORES])[store]
    centre_lon = np.array([s[6] for s in _STORES])[store]
    distance_km = 15.0 * rng.random(n)
    bearing = 2 * np.pi * rng.random(n)
    lat = centre_lat + distance_km * np.cos(bearing) / 111.32
    lon = centre_lon + distance_km * np.sin(bearing) / (111.32 * np.cos(np.radians(centre_lat)))
    postal_prefix = np.array([int(s[2][:2]) for s in _STORES], dtype=np.int64)[store]
    postal_code = _text(postal_prefix * 1000 + rng.integers(1, 60, n), 5)
    cities = pa.array([s[0] for s in _STORES]).take(pa.array(store))

    # Who they are: gender-consistent first names, two surnames, emails from the ASCII forms.
    female = rng.random(n) < 0.52
    first_code = np.where(
        female,
        rng.choice(len(_FEMALE_NAMES), n, p=_zipf_weights(len(_FEMALE_NAMES), 0.6)),
        len(_FEMALE_NAMES) + rng.choice(len(_MALE_NAMES), n, p=_zipf_weights(len(_MALE_NAMES), 0.6)),
    ).astype(np.int64)
    surname_weights = _zipf_weights(len(_SURNAMES), 0.7)
    surname1 = rng.choice(len(_SURNAMES), n, p=surname_weights).astype(np.int64)
    surname2 = rng.choice(len(_SURNAMES), n, p=surname_weights).astype(np.int64)
    first_names = pa.array((*_FEMALE_NAMES, *_MALE_NAMES))
    surnames = pa.array(_SURNAMES)
    first_ascii = pa.array([_ascii_slug(name) for name in (*_FEMALE_NAMES, *_MALE_NAMES)])
    surname_ascii = pa.array([_ascii_slug(name) for name in _SURNAMES])
    domain = pa.array(EMAIL_DOMAINS).take(pa.array(rng.choice(3, n, p=[0.7, 0.15, 0.15])))
    local_part = pc.binary_join_element_wise(
        first_ascii.take(pa.array(first_code)),
        ".",
        surname_ascii.take(pa.array(surname1)),
        _text(numbers),
        "",
    )
    email = pc.binary_join_element_wise(local_part, "@", domain, "")
    email_fault = rng.random(n)
    email = pc.if_else(
        pa.array(email_fault < 0.03),
        pa.array(("", *_INVALID_EMAILS)).take(pa.array(rng.integers(0, 1 + len(_INVALID_EMAILS), n))),
        email,
    )
    email = _masked(email, email_fault < 0.015)
    last_name = pc.binary_join_element_wise(
        surnames.take(pa.array(surname1)), surnames.take(pa.array(surname2)), " "
    )

    # Birthdays 1945-2005, with some on the as-of day so birthday automations have someone to greet.
    as_of = np.datetime64("1970-01-01") + np.timedelta64(as_of_day, "D")
    first_birth = (np.datetime64("1945-01-01") - np.datetime64("1970-01-01")).astype(np.int64)
    last_birth = (np.datetime64("2005-12-31") - np.datetime64("1970-01-01")).astype(np.int64)
    birth_day = rng.integers(first_birth, last_birth + 1, n)
    month_day = as_of - as_of.astype("datetime64[Y]")
    birth_year = rng.integers(1945, 2006, n)
    if str(as_of)[5:] == "02-29":
        birth_year = rng.choice(np.arange(1948, 2005, 4), n)  # leap years only
    on_birthday = (birth_year - 1970).astype("datetime64[Y]").astype("datetime64[D]") + month_day
    birth_day = np.where(rng.random(n) < 0.015, on_birthday.astype(np.int64), birth_day)

    phone_digits = rng.integers(600_000_000, 750_000_000, n)
    phone_text = _text(phone_digits)
    phone = pc.binary_join_element_wise(
        "+34",
        pc.utf8_slice_codeunits(phone_text, 0, 3),
        pc.utf8_slice_codeunits(phone_text, 3, 6),
        pc.utf8_slice_codeunits(phone_text, 6, 9),
        " ",
    )
    phone = _masked(phone, rng.random(n) < 0.06)

    # When they buy: they join (first purchase) on any day of the history and buy by the BG/NBD process.
    join_at = (as_of_day - rng.integers(1, HISTORY_DAYS + 1, n)) * SECONDS_PER_DAY + rng.integers(
        8 * 3600, 22 * 3600, n
    )
    purchase_customer, purchase_at = _bgnbd_purchases(rng, join_at, as_of_day * SECONDS_PER_DAY)
    n_orders = np.bincount(purchase_customer, minlength=n).astype(np.int64)

    created_at = join_at - rng.integers(0, 240, n) * SECONDS_PER_DAY - rng.integers(0, 3600, n)
    consent = rng.random(n) < 0.80
    consent_at = np.minimum(
        created_at + rng.integers(0, 45 * SECONDS_PER_DAY, n), as_of_day * SECONDS_PER_DAY - 3600
    )
    no_first_name = rng.random(n) < DIRT["customers_without_first_name"]
    exported = rng.random(n) >= DIRT["customers_missing_from_export"]
    catalan_share = np.array([_CATALAN_SPEAKERS.get(s[0], 0.01) for s in _STORES])[store]
    language = pa.array(["es", "ca"]).take(pa.array((rng.random(n) < catalan_share).astype(np.int8)))
    loyalty_score = n_orders + rng.normal(0.0, 2.0, n)
    loyalty = np.searchsorted(np.quantile(loyalty_score, [0.40, 0.75, 0.93]), loyalty_score).astype(np.int64)

    columns = [
        ids,
        email,
        _masked(first_names.take(pa.array(first_code)), no_first_name),
        last_name,
        pa.array(["M", "F"]).take(pa.array(female.astype(np.int8))),
        _dates(birth_day),
        phone,
        postal_code,
        cities,
        pa.array(["ES"]).take(pa.array(np.zeros(n, dtype=np.int8))),
        _fixed(np.round(lat * 1e6).astype(np.int64), 6),
        _fixed(np.round(lon * 1e6).astype(np.int64), 6),
        pa.array(consent),
        _masked(_timestamps(consent_at), ~consent),
        _timestamps(created_at),
        language,
        pa.array(_LOYALTY_TIERS).take(pa.array(loyalty)),
    ]
    keep = pa.array(exported)
    _write_csv(customers_path, CUSTOMER_COLUMNS, [column.filter(keep) for column in columns])
    return _Customers(
        ids,
        persona,
        store,
        n_orders,
        purchase_customer,
        purchase_at,
        int(no_first_name.sum()),
        int(n - exported.sum()),
    )


@dataclass(frozen=True)
class _Orders:
    """Orders (purchases, returns and cancellations, numbered by time) and their lines, as integer codes."""

    customer: IntArray  # per order
    ordered_at: IntArray  # per order, epoch seconds
    store: IntArray  # per order, -1 for online orders
    kind: IntArray  # per order: 0 purchase, 1 return, 2 cancelled (an index into STATUSES' values)
    line_order: IntArray  # per line: the 0-based number of its order
    product: IntArray
    quantity: IntArray  # negative for returns
    price_cents: IntArray
    returns: int
    cancelled: int
    duplicate_lines: int
    rare_lines: int


def _make_orders(
    rng: np.random.Generator,
    customers: _Customers,
    products: _Products,
    persona_probs: FloatArray,
    rare_categories: IntArray,
    as_of_day: int,
) -> _Orders:
    """Draw every order and line: the purchases' baskets from the persona, their totals from Gamma-Gamma,
    then the dirt: rare-category lines, returned lines, cancelled orders and duplicate lines."""
    n_customers = customers.persona.size
    # The purchases, numbered by time; everything below is drawn in that order.
    chronological = np.argsort(customers.purchase_at, kind="stable")
    ordered_at = customers.purchase_at[chronological]
    order_customer = customers.purchase_customer[chronological].astype(np.int32)
    first_purchase = np.zeros(ordered_at.size, dtype=np.bool_)
    first_purchase[np.argsort(chronological)[np.cumsum(customers.n_orders) - customers.n_orders]] = True
    del chronological
    n_orders = ordered_at.size

    in_store = rng.random(n_orders) < 0.70
    usual_store = rng.random(n_orders) < 0.85
    other_store = rng.integers(0, len(_STORES), n_orders)
    order_store = np.where(
        in_store, np.where(usual_store, customers.home_store[order_customer], other_store), -1
    ).astype(np.int16)
    del in_store, usual_store, other_store

    # Baskets: an order touches a few distinct categories, drawn from the persona's distribution without
    # replacement, and holds one or more products of each, picked by popularity.
    order_persona = customers.persona[order_customer]
    min_categories = np.array([p.min_categories for p in _PERSONAS])[order_persona]
    extra_categories = np.array([p.extra_categories for p in _PERSONAS])[order_persona]
    per_order = np.minimum(min_categories + rng.poisson(extra_categories), persona_probs.shape[1])
    del min_categories, extra_categories
    slot_category = _basket_categories(rng, persona_probs, order_persona, per_order)
    del order_persona
    lines_per_slot = 1 + rng.poisson(EXTRA_LINES_PER_CATEGORY, slot_category.size)
    category = np.repeat(slot_category, lines_per_slot)
    line_order = np.repeat(np.repeat(np.arange(n_orders, dtype=np.int32), per_order), lines_per_slot)
    del slot_category, lines_per_slot

    # A few customers add a product of a rare category to their first purchase.
    rare_buyer = rng.random(n_customers) < DIRT["rare_category_buyers"]
    rare_order = np.flatnonzero(first_purchase & rare_buyer[order_customer]).astype(np.int32)
    rare_category = rare_categories[rng.integers(0, rare_categories.size, rare_order.size)]
    at = np.searchsorted(line_order, rare_order, side="right")
    line_order = np.insert(line_order, at, rare_order)
    category = np.insert(category, at, rare_category)
    del rare_buyer, rare_category, at, first_purchase

    n_lines = line_order.size
    product = (products.category_start[category] + _sample_rows(rng, products.category_cdf, category)).astype(
        np.int32
    )
    del category
    units = np.searchsorted(np.cumsum(QUANTITY_SHARES), rng.random(n_lines), side="right")
    quantity = (1 + np.minimum(units, len(QUANTITY_SHARES) - 1)).astype(np.int16)
    del units
    line_day = ordered_at[line_order] // SECONDS_PER_DAY
    offered = (
        products.on_offer[product]
        & (products.offer_from[product] <= line_day)
        & (line_day <= products.offer_to[product])
    )
    list_cents = np.where(offered, products.offer_cents[product], products.price_cents[product])
    del line_day, offered

    # What each order costs: Gamma-Gamma. The basket's list prices are scaled to the drawn total (each
    # order has its own price level), so the order totals follow the process to the cent.
    nu = rng.gamma(GAMMA_GAMMA["q"], 1.0 / GAMMA_GAMMA["gamma"], n_customers)
    total_cents = 100.0 * rng.gamma(GAMMA_GAMMA["p"], 1.0 / nu[order_customer])
    list_total = np.bincount(line_order, weights=list_cents * quantity, minlength=n_orders)
    price_cents = np.maximum(1, np.round(list_cents * (total_cents / list_total)[line_order])).astype(
        np.int32
    )
    del nu, total_cents, list_total, list_cents

    # Returns: some lines come back a few days later, each in an order of its own.
    end_at = as_of_day * SECONDS_PER_DAY
    returned_line = np.flatnonzero(rng.random(n_lines) < DIRT["returned_lines"])
    return_at = np.minimum(
        ordered_at[line_order[returned_line]]
        + rng.integers(1, 8, returned_line.size) * SECONDS_PER_DAY
        + rng.integers(0, 3600, returned_line.size),
        end_at - 60,
    )
    # Cancellations: an order placed again a few hours to ten days after a purchase, and cancelled.
    cancelled_of = np.flatnonzero(rng.random(n_orders) < DIRT["cancelled_orders"])
    cancel_at = np.minimum(
        ordered_at[cancelled_of] + rng.integers(3600, 10 * SECONDS_PER_DAY, cancelled_of.size), end_at - 60
    )
    cancelled_line = np.flatnonzero(np.isin(line_order, cancelled_of))
    # Duplicates: a few lines written twice, in the same order.
    duplicate_line = np.flatnonzero(rng.random(n_lines) < DIRT["duplicate_lines"])

    # Every order (purchases, returns, cancellations) numbered by time; lines grouped by that number.
    n_returns, n_cancelled = returned_line.size, cancelled_of.size
    all_at = np.concatenate([ordered_at, return_at, cancel_at])
    number = np.empty(all_at.size, dtype=np.int32)
    number[np.argsort(all_at, kind="stable")] = np.arange(all_at.size, dtype=np.int32)
    kind = np.concatenate(
        [np.zeros(n_orders, np.int8), np.ones(n_returns, np.int8), np.full(n_cancelled, 2, np.int8)]
    )
    source = np.concatenate([np.arange(n_orders), line_order[returned_line], cancelled_of])
    cancel_index = np.full(n_orders, -1, dtype=np.int64)
    cancel_index[cancelled_of] = n_orders + n_returns + np.arange(n_cancelled)
    all_lines = np.concatenate([np.arange(n_lines), returned_line, cancelled_line, duplicate_line])
    line_number = np.concatenate(
        [
            number[line_order],
            number[n_orders + np.arange(n_returns)],
            number[cancel_index[line_order[cancelled_line]]],
            number[line_order[duplicate_line]],
        ]
    )
    sign = np.ones(all_lines.size, dtype=np.int16)
    sign[n_lines : n_lines + n_returns] = -1
    by_number = np.argsort(line_number, kind="stable")
    all_lines, sign = all_lines[by_number], sign[by_number]

    order_of_number = np.empty(all_at.size, dtype=np.int64)
    order_of_number[number] = np.arange(all_at.size)
    return _Orders(
        customer=order_customer[source][order_of_number],
        ordered_at=all_at[order_of_number],
        store=order_store[source][order_of_number],
        kind=kind[order_of_number],
        line_order=line_number[by_number],
        product=product[all_lines],
        quantity=quantity[all_lines] * sign,
        price_cents=price_cents[all_lines],
        returns=n_returns,
        cancelled=n_cancelled,
        duplicate_lines=int(duplicate_line.size),
        rare_lines=int(rare_order.size),
    )


_ORDERS_SCHEMA = pa.schema(
    [
        ("order_id", pa.string()),
        ("customer_id", pa.string()),
        ("ordered_at", pa.timestamp("s")),
        ("product_id", pa.string()),
        ("quantity", pa.int32()),
        ("unit_price", pa.float64()),
        ("store_id", pa.string()),
        ("status", pa.string()),
    ]
)


def _price_text(cents: IntArray) -> Any:
    """Prices as text with two decimals; formats each distinct price once."""
    distinct, inverse = np.unique(cents, return_inverse=True)
    return _fixed(distinct, 2).take(pa.array(inverse.astype(np.int32)))


def _write_orders(
    path: Path,
    orders: _Orders,
    customers: _Customers,
    products: _Products,
    store_ids: Any,
    orders_format: str,
    progress: ProgressFn,
) -> None:
    """Write the order lines as CSV or Parquet, a million lines (one row group) at a time."""
    width = max(7, len(str(orders.customer.size)))
    statuses = pa.array(list(STATUSES.values()))
    writer = (
        pq.ParquetWriter(path, _ORDERS_SCHEMA, compression="zstd") if orders_format == "parquet" else None
    )
    out = path.open("wb") if writer is None else None
    try:
        if out is not None:
            out.write((",".join(ORDER_COLUMNS) + "\n").encode("utf-8"))
        total = orders.line_order.size
        for start in range(0, total, CHUNK_ROWS):
            part = slice(start, start + CHUNK_ROWS)
            order = orders.line_order[part]
            store = orders.store[order]
            columns = [
                _ids("P", order.astype(np.int64) + 1, width),
                customers.ids.take(pa.array(orders.customer[order])),
                _timestamps(orders.ordered_at[order]),
                products.ids.take(pa.array(orders.product[part])),
                pa.array(orders.quantity[part].astype(np.int32)),
                None,
                store_ids.take(pa.array(np.maximum(store, 0), mask=store < 0)),
                statuses.take(pa.array(orders.kind[order])),
            ]
            if writer is not None:
                columns[5] = pa.array(orders.price_cents[part] / 100.0)
                writer.write_table(
                    pa.Table.from_arrays(columns, schema=_ORDERS_SCHEMA), row_group_size=CHUNK_ROWS
                )
            elif out is not None:
                columns[5] = _price_text(orders.price_cents[part])
                fields = [_csv_field(column) for column in columns]
                lines = pc.binary_join_element_wise(
                    *fields, ",", null_handling="replace", null_replacement=""
                )
                out.write(_string_bytes(pc.binary_join_element_wise(lines, "", "\n")))
            progress(f"orders: {min(start + CHUNK_ROWS, total):,} of {total:,} lines written")
    finally:
        if writer is not None:
            writer.close()
        if out is not None:
            out.close()


def _write_truth_json(
    path: Path,
    seed: int,
    as_of: date,
    n_customers: int,
    k: int,
    common: Sequence[_Category],
    customers: _Customers,
    products: _Products,
    orders: _Orders,
) -> None:
    """Write truth.json: the generating parameters, the planted personas and the dirt, planned and drawn."""
    persona_sizes = np.bincount(customers.persona, minlength=k)
    document = {
        "seed": seed,
        "as_of": as_of.isoformat(),
        "history_days": HISTORY_DAYS,
        "customers": n_customers,
        "purchase_process": {
            "model": "bgnbd",
            "unit": "weeks",
            "params": BGNBD,
            "first_purchase": "one per customer, on a day drawn uniformly over the history",
            "one_time_buyers": int((customers.n_orders == 1).sum()),
            "purchases": int(customers.n_orders.sum()),
        },
        "spend_process": {"model": "gamma_gamma", "currency": "EUR", "params": GAMMA_GAMMA},
        "personas": [
            {
                "number": number + 1,
                "name": persona.name,
                "customers": int(persona_sizes[number]),
                "categories": {
                    name: weight
                    for name, weight in persona.weights.items()
                    if name in {c.name for c in common}
                },
            }
            for number, persona in enumerate(_PERSONAS[:k])
        ],
        "categories": [c.name for c in common],
        "rare_categories": [c.name for c in _RARE_CATEGORIES],
        "statuses": STATUSES,
        "dirt": {
            "rates": DIRT,
            "counts": {
                "cancelled_orders": orders.cancelled,
                "returned_lines": orders.returns,
                "duplicate_lines": orders.duplicate_lines,
                "rare_category_lines": orders.rare_lines,
                "customers_without_first_name": customers.without_first_name,
                "customers_missing_from_export": customers.missing_from_export,
                "products_with_a_blank_name_line": products.blank_names,
                "products_with_a_blank_price_line": products.blank_prices,
            },
        },
    }
    path.write_text(json.dumps(document, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


IMAGE_SIZE = 48
"""Side in pixels of the demo's generated product pictures."""


def _png(width: int, height: int, rows: list[bytes]) -> bytes:
    """A truecolour PNG from raw RGB rows (stdlib zlib: no imaging library needed)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + row for row in rows)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


def product_picture(category: int, product: int) -> bytes:
    """A small PNG for a product: its category's colour as background, a lighter disc whose size varies by
    product, so the demo's emails show pictures that tell categories apart (and nothing is fetched)."""
    hue = (category * 0.61803398875) % 1.0
    import colorsys

    base = tuple(round(255 * c) for c in colorsys.hsv_to_rgb(hue, 0.45, 0.85))
    light = tuple(min(255, c + 60) for c in base)
    radius = IMAGE_SIZE * (0.22 + 0.06 * (product % 4))
    centre = (IMAGE_SIZE - 1) / 2
    rows = []
    for y in range(IMAGE_SIZE):
        row = bytearray()
        for x in range(IMAGE_SIZE):
            inside = (x - centre) ** 2 + (y - centre) ** 2 <= radius**2
            row.extend(light if inside else base)
        rows.append(bytes(row))
    return _png(IMAGE_SIZE, IMAGE_SIZE, rows)


def write_product_pictures(directory: Path, ids: list[str], category_of: list[int]) -> Path:
    """Write `directory/img/<product id>.jpg` (PNG data; browsers go by the content) for every product, the
    files the products' image_url `https://tienda.example/img/<id>.jpg` name; `campaign preview --images`
    shows them."""
    folder = directory / "img"
    folder.mkdir(parents=True, exist_ok=True)
    cache: dict[tuple[int, int], bytes] = {}
    for number, (product_id, category) in enumerate(zip(ids, category_of, strict=True)):
        key = (category, number % 4)
        if key not in cache:
            cache[key] = product_picture(category, number)
        (folder / f"{product_id}.jpg").write_bytes(cache[key])
    return folder


def generate_shop(
    directory: Path,
    customers: int = 2000,
    seed: int = 42,
    orders_format: str = "csv",
    as_of: date = date(2026, 6, 30),
    progress: ProgressFn | None = None,
) -> ShopFiles:
    """Make the example shop in `directory`: customers, products, stores, orders and the planted truth.

    Deterministic for a given (customers, seed, as_of, orders_format). Orders span the three years before
    `as_of`; at 100,000 customers or more the shop has 20 categories and 7 personas instead of 6 and 5.
    """
    if customers < 1:
        raise ValueError("customers must be at least 1")
    if orders_format not in ("csv", "parquet"):
        raise ValueError(f"orders_format must be 'csv' or 'parquet', not {orders_format!r}")
    report: ProgressFn = progress if progress is not None else (lambda _message: None)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)

    large = customers >= LARGE_SHOP_CUSTOMERS
    common = _BASE_CATEGORIES + _EXTRA_CATEGORIES if large else _BASE_CATEGORIES
    categories = common + _RARE_CATEGORIES
    per_category = 260 if large else 30
    k = len(_PERSONAS) if large else _SMALL_PERSONAS
    as_of_day = (as_of - date(1970, 1, 1)).days
    product_rng, customer_rng, order_rng = (
        np.random.default_rng(child) for child in np.random.SeedSequence(seed).spawn(3)
    )

    paths = {
        name: directory / f"{name}.csv" for name in ("customers", "products", "stores", "truth", "orders")
    }
    paths["orders"] = directory / f"orders.{orders_format}"

    report("stores")
    store_ids = _make_stores(paths["stores"])
    report("products")
    products = _make_products(paths["products"], product_rng, categories, per_category, as_of_day)
    write_product_pictures(directory, products.ids.to_pylist(), [int(c) for c in products.category])
    report("customers")
    shop_customers = _make_customers(
        paths["customers"], paths["truth"], customer_rng, customers, k, large, as_of_day
    )
    report("orders: drawing")
    rare = np.arange(len(common), len(categories), dtype=np.int64)
    orders = _make_orders(order_rng, shop_customers, products, _persona_matrix(common, k), rare, as_of_day)
    _write_orders(paths["orders"], orders, shop_customers, products, store_ids, orders_format, report)
    truth_json = directory / "truth.json"
    _write_truth_json(truth_json, seed, as_of, customers, k, common, shop_customers, products, orders)

    return ShopFiles(
        directory=directory,
        customers=paths["customers"],
        products=paths["products"],
        stores=paths["stores"],
        orders=paths["orders"],
        truth=paths["truth"],
        truth_json=truth_json,
        n_customers=customers,
        n_products=len(products.ids),
        n_order_lines=int(orders.line_order.size),
        n_orders=int(orders.customer.size),
        personas=tuple(p.name for p in _PERSONAS[:k]),
    )
