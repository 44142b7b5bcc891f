"""Subjects of decisions: legal persons, individual businesses and natural persons with valid codes and Chinese
names, and the reference-base snapshot (法人库, 人口库) they form (D3, D13).

Codes are built the way the standards build them, so the validators can be exercised for real:
- 统一社会信用代码 (GB 32100-2015): registration authority + entity type, the district's division code, a
  9-character 组织机构代码 whose last character is its GB 11714 check character, and the final check character;
- 居民身份证号 (GB 11643-1999): division code, birth date, sequence (odd for men), ISO 7064 MOD 11-2 check.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from functools import cache

from stdnum.cn import ric, uscc
from stdnum.exceptions import ValidationError

# GB 32100 forbids I, O, S, V, Z anywhere in the code.
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)

# A person's ID carries the division code in force where and when they were born: people born in today's
# 闵行区 before 1981 carry 上海县's code, and so on (python-stdnum knows each code's years and checks them).
_EARLIER_DIVISIONS = {
    "310112": ("310201", "310221"),  # 闵行区 <- 上海县
    "310113": ("310203", "310223"),  # 宝山区 <- 宝山县
    "310114": ("310202", "310222"),  # 嘉定区 <- 嘉定县
    "310115": ("310204", "310224", "310205", "310225", "310119"),  # 浦东新区 <- 川沙县, 南汇县, 南汇区
    "310116": ("310208", "310228"),  # 金山区 <- 金山县
    "310117": ("310207", "310227"),  # 松江区 <- 松江县
    "310118": ("310209", "310229"),  # 青浦区 <- 青浦县
    "310120": ("310206", "310226"),  # 奉贤区 <- 奉贤县
    "310151": ("310210", "310230"),  # 崇明区 <- 崇明县
    "310000": ("310101", "310104", "310106"),  # 市级: people of the central districts
}
# Shanghai draws people from everywhere: a share of IDs come from other provinces.
_ELSEWHERE = ("340121", "360121", "510121", "430121", "350121")
_ALWAYS_ASSIGNED = "310101"  # 黄浦区 has had its code since the first edition of GB/T 2260


@cache
def division_assigned(code: str, year: int) -> bool:
    """Whether `code` was a division code in `year` (python-stdnum's GB/T 2260 history)."""
    probe = f"{code}{year}0101001"
    try:
        ric.get_birth_place(probe + ric.calc_check_digit(probe + "0"))
    except ValidationError:
        return False
    return True


SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟"
    "谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
GIVEN = (
    "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉萍红娥玲芬燕彬鹏辉建国志强海波晓东文博宇浩"
    "子涵欣怡梓轩雨涵俊杰嘉怡思远佳琪浩然晨曦一鸣天佑若曦子墨诗涵雅婷家豪振华立新永刚凤英淑珍佩琳琦"
)
_TRADE_NAMES = (  # noqa: SIM905 (a word list reads better as one string)
    "宏达 鑫源 恒通 华信 佳禾 锦程 瑞丰 申丰 浦江 东方 新亚 联合 金桥 云帆 和盛 嘉禾 富顺 兴旺 博远 汇通 安泰 中盛 "
    "天润 融创 启明 卓越 永安 长江 海纳 百川 同济 德润 隆昌 盛世 景瑞 祥和 晟达 明珠 黄浦 外滩 星辰 万象 锐思 智联 "
    "青藤 绿源 蓝天 红星 乐购 优品 诚信 鼎盛 正大 远航 睿智 顺丰达 味之源 老城隍 沪香 弄堂 石库门"
).split()
_SMALL_SHOP = "张记 老王 阿英 小李 陈氏 红梅 福来 好运 家乐 惠民 便民 幸福 老街 阿强 金福".split()  # noqa: SIM905

# Industry groups: which departments deal with which businesses (a 卫生健康 licence goes to a clinic, not a
# logistics firm). Each group lists the 行业 words a company name in that group uses.
INDUSTRIES: dict[str, tuple[str, ...]] = {
    "food": ("餐饮管理", "食品", "餐饮", "超市", "食品贸易", "农产品"),
    "manufacturing": ("化工", "机械制造", "电子科技", "印染", "新材料", "金属制品", "塑料制品"),
    "construction": ("建筑工程", "建筑装饰工程", "市政工程", "土石方工程", "广告"),
    "transport": ("物流", "运输", "汽车服务", "货运代理", "出租汽车"),
    "medical": ("医疗管理", "门诊部", "口腔门诊部", "健康管理", "美容"),
    "trade": ("贸易", "商贸", "信息科技", "网络科技", "实业", "企业管理咨询"),
}
_SHOP_TRADES: dict[str, tuple[str, ...]] = {
    "food": ("面馆", "小吃店", "点心店", "水果店", "便利店", "饭店"),
    "manufacturing": ("五金加工厂", "印刷店"),
    "construction": ("装潢服务部", "广告设计部"),
    "transport": ("汽车修理部", "搬场服务部"),
    "medical": ("美容美发店", "足浴店"),
    "trade": ("百货店", "服装店", "烟杂店"),
}
_COMPANY_FORMS = ("有限公司", "有限公司", "有限公司", "股份有限公司", "有限责任公司")


class Category:
    """行政相对人类别 (the `sgs.CounterpartCategory` symbols)."""

    LEGAL_PERSON = "LEGAL_PERSON"
    NATURAL_PERSON = "NATURAL_PERSON"
    INDIVIDUAL_BUSINESS = "INDIVIDUAL_BUSINESS"


@dataclass(frozen=True)
class Person:
    """A natural person as the population base (人口库) holds them."""

    id_no: str
    name: str


@dataclass(frozen=True)
class Subject:
    """A counterpart as registered: the reference base's view, which a record may contradict on purpose."""

    category: str
    name: str
    district: str
    industry: str
    uscc: str | None = None
    person: Person | None = None  # the natural person, or the legal representative / 经营者
    status: str = "存续"  # 登记状态: 存续 / 注销 / 吊销
    status_since: date | None = None


def org_code_check(body: str) -> str:
    """GB 11714 check character of an 8-character 组织机构代码 body (digits and capital letters)."""
    total = sum(int(c, 36) * w for c, w in zip(body, _ORG_WEIGHTS, strict=True))
    check = 11 - total % 11
    return "X" if check == 10 else "0" if check == 11 else str(check)


def make_uscc(rng: random.Random, authority_type: str, division: str) -> str:
    """A valid 统一社会信用代码: `authority_type` is e.g. "91" (工商, 企业) or "92" (工商, 个体工商户)."""
    if rng.random() < 0.6:  # codes issued since 2015 carry an "MA" organisation code
        body = "MA" + "".join(rng.choice(USCC_ALPHABET[:10] + "ABCDEFGHJKLMNPQRTUWXY") for _ in range(6))
    else:
        body = "".join(rng.choice("0123456789") for _ in range(8))
    partial = authority_type + division + body + org_code_check(body)
    return partial + uscc.calc_check_digit(partial)


def make_id_no(rng: random.Random, division: str, born: date, male: bool) -> str:
    """A valid 居民身份证号 for someone born in `division` on `born`."""
    seq = rng.randrange(0, 500) * 2 + (1 if male else 0)
    partial = f"{division}{born:%Y%m%d}{seq:03d}"
    return partial + ric.calc_check_digit(partial + "0")


def person_name(rng: random.Random) -> str:
    surname = rng.choice(SURNAMES)
    if rng.random() < 0.35:
        return surname + rng.choice(GIVEN)
    return surname + rng.choice(GIVEN) + rng.choice(GIVEN)


def birth_division(rng: random.Random, district: str, year: int) -> str:
    candidates = [rng.choice(_ELSEWHERE)] if rng.random() < 0.25 else []
    own = () if district.endswith("0000") else (district,)  # the municipal level: people of the districts
    candidates += [*own, *_EARLIER_DIVISIONS.get(district, ())]
    return next((c for c in candidates if division_assigned(c, year)), _ALWAYS_ASSIGNED)


def make_person(rng: random.Random, district: str) -> Person:
    born = date(1950, 1, 1) + timedelta(days=rng.randrange((date(2005, 12, 31) - date(1950, 1, 1)).days))
    division = birth_division(rng, district, born.year)
    return Person(make_id_no(rng, division, born, rng.random() < 0.5), person_name(rng))


def company_name(rng: random.Random, industry: str, district_name: str) -> str:
    trade, sector = rng.choice(_TRADE_NAMES), rng.choice(INDUSTRIES[industry])
    shape = rng.random()
    if (
        shape < 0.15
    ):  # 字号（行政区划）行业: the bracketed form whose full-/half-width variants must still match
        return f"{trade}（上海）{sector}有限公司"
    if shape < 0.25 and district_name:
        return f"上海{trade}{sector}有限公司{district_name.removesuffix('新区').removesuffix('区')}分公司"
    return f"上海{trade}{sector}{rng.choice(_COMPANY_FORMS)}"


def shop_name(rng: random.Random, industry: str, district_name: str) -> str:
    return f"{district_name or '上海市'}{rng.choice(_SMALL_SHOP)}{rng.choice(_SHOP_TRADES[industry])}"


def make_legal_person(rng: random.Random, district: str, district_name: str, industry: str) -> Subject:
    name = company_name(rng, industry, district_name)
    return Subject(
        Category.LEGAL_PERSON,
        name,
        district,
        industry,
        make_uscc(rng, "91", district),
        make_person(rng, district),
    )


def make_individual_business(rng: random.Random, district: str, district_name: str, industry: str) -> Subject:
    return Subject(
        Category.INDIVIDUAL_BUSINESS,
        shop_name(rng, industry, district_name),
        district,
        industry,
        make_uscc(rng, "92", district),
        make_person(rng, district),
    )


def make_natural_person(rng: random.Random, district: str) -> Subject:
    person = make_person(rng, district)
    return Subject(Category.NATURAL_PERSON, person.name, district, "", person=person)


@dataclass
class Population:
    """Every subject of one simulated federation, grouped for quick picking, plus the ones the base marks as
    deregistered or revoked (D13). The reference-base snapshot is exactly this population."""

    legal: dict[tuple[str, str], list[Subject]] = field(
        default_factory=dict
    )  # (district, industry) -> companies
    shops: dict[tuple[str, str], list[Subject]] = field(
        default_factory=dict
    )  # (district, industry) -> 个体户
    people: dict[str, list[Subject]] = field(default_factory=dict)  # district -> natural persons
    closed: dict[str, list[Subject]] = field(
        default_factory=dict
    )  # district -> deregistered/revoked entities
    taken: set[str] = field(
        default_factory=set
    )  # every code in the base, so an "unknown" code can avoid them

    @classmethod
    def build(
        cls,
        districts: dict[str, str],
        seed: int,
        companies_per_industry: int = 40,
        shops_per_industry: int = 15,
        people_per_district: int = 200,
        closed_per_district: int = 10,
        closed_before: date | None = None,
    ) -> Population:
        """`districts` maps division code -> name. `closed_before`: deregistration dates fall in the two years
        before it (so a decision after it meets a closed entity)."""
        rng = random.Random(seed)
        closed_before = closed_before or date.today()
        pop = cls()
        taken: set[str] = set()

        def unique(make: Callable[..., Subject], *args: object) -> Subject:
            # Codes are drawn at random: redraw the rare collision so every code names exactly one subject.
            while True:
                subject = make(rng, *args)
                keys = {k for k in (subject.uscc, subject.person.id_no if subject.person else None) if k}
                if not keys & taken:
                    taken.update(keys)
                    return subject

        for code, name in districts.items():
            for industry in INDUSTRIES:
                pop.legal[code, industry] = [
                    unique(make_legal_person, code, name, industry) for _ in range(companies_per_industry)
                ]
                pop.shops[code, industry] = [
                    unique(make_individual_business, code, name, industry) for _ in range(shops_per_industry)
                ]
            pop.people[code] = [unique(make_natural_person, code) for _ in range(people_per_district)]
            closed = []
            for _ in range(closed_per_district):
                subject = unique(make_legal_person, code, name, rng.choice(list(INDUSTRIES)))
                status = "注销" if rng.random() < 0.7 else "吊销"
                since = closed_before - timedelta(days=rng.randrange(30, 730))
                closed.append(replace(subject, status=status, status_since=since))
            pop.closed[code] = closed
        pop.taken = taken
        return pop

    def organisations(self) -> list[Subject]:
        """Every entry of the legal-person base (法人库), in a stable order."""
        out = [s for group in self.legal.values() for s in group]
        out += [s for group in self.shops.values() for s in group]
        out += [s for group in self.closed.values() for s in group]
        return out

    def persons(self) -> list[Person]:
        """Every entry of the population base (人口库): natural persons, legal representatives, 经营者."""
        seen: dict[str, Person] = {}
        for s in self.organisations():
            if s.person:
                seen.setdefault(s.person.id_no, s.person)
        for group in self.people.values():
            for s in group:
                if s.person:
                    seen.setdefault(s.person.id_no, s.person)
        return list(seen.values())
