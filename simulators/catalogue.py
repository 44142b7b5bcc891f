"""What each kind of department decides: the licences it grants and the penalties it imposes, with their legal
bases, penalty types, amounts and document-number styles (D1, D2, D11, D14).

Departments are recognised by their key in the federation config (`scjg` 市场监管, `sthj` 生态环境, `cgzf`
城管执法, `wsjk` 卫生健康, `yjgl` 应急管理, `jtw` 交通, `swj` 税务); an unknown key gets the 市场监管 catalogue.
"""

from __future__ import annotations

from dataclasses import dataclass

from simulators.subjects import Category

LP, NP, IB = Category.LEGAL_PERSON, Category.NATURAL_PERSON, Category.INDIVIDUAL_BUSINESS


@dataclass(frozen=True)
class LicenceKind:
    """A licence a department grants. `validity_years` None means long-term (长期, D14)."""

    name: str  # 项目名称 / 行政许可决定文书名称
    category: str  # sgs.LicenseCategory symbol
    cert_name: str | None
    content: str  # 许可内容; {subject} is the counterpart name
    counterparts: tuple[str, ...]
    industries: tuple[str, ...]
    validity_years: int | None
    number_prefix: str  # 许可编号 prefix; the number continues with the division code and a sequence


@dataclass(frozen=True)
class Violation:
    """A penalty a department imposes: 违法行为类型, 违法事实 template, 处罚依据, types and fine range (元)."""

    type: str
    facts: str  # {subject}, {place}, {item}
    basis: str
    penalty_types: tuple[str, ...]  # sgs.PenaltyType symbols
    fine_yuan: tuple[int, int] | None  # range of the fine in 元; None when the penalty carries no fine
    counterparts: tuple[str, ...]
    industries: tuple[str, ...]
    items: tuple[str, ...] = ("",)
    confiscation_yuan: tuple[int, int] | None = None
    serious: float = 0.0  # share of such penalties judged 严重失信 (D14)
    suspended: str | None = None  # 暂扣或吊销证照名称 when a licence is taken


@dataclass(frozen=True)
class DepartmentKind:
    short: str  # in document numbers: 沪市监静处〔2026〕…号
    licences: tuple[LicenceKind, ...]
    violations: tuple[Violation, ...]
    licence_doc: str  # {d} district char, {y} year, {n} sequence
    penalty_doc: str


_FOOD = ("food",)
_PLACES = ("经营场所", "门店", "网络店铺", "仓库")

CATALOGUE: dict[str, DepartmentKind] = {
    "scjg": DepartmentKind(
        short="市监",
        licence_doc="沪{d}市监许〔{y}〕{n}号",
        penalty_doc="沪市监{d}处〔{y}〕{n}号",
        licences=(
            LicenceKind(
                "食品经营许可",
                "ORDINARY",
                "食品经营许可证",
                "经营项目：预包装食品销售（含冷藏冷冻食品）、散装食品销售、热食类食品制售",
                (LP, IB),
                _FOOD,
                5,
                "JY1",
            ),
            LicenceKind(
                "企业设立登记",
                "REGISTRATION",
                "营业执照",
                "准予{subject}设立登记",
                (LP,),
                ("trade", "manufacturing"),
                None,
                "SL",
            ),
            LicenceKind(
                "特种设备使用登记",
                "REGISTRATION",
                "特种设备使用登记证",
                "电梯、压力容器使用登记",
                (LP,),
                ("manufacturing", "trade"),
                None,
                "TS",
            ),
        ),
        violations=(
            Violation(
                "虚假宣传",
                "当事人在其{place}发布“{item}”广告，宣称具有治疗功效，无法提供证明材料，构成虚假宣传。",
                "《中华人民共和国反不正当竞争法》第八条第一款、第二十条第一款",
                ("FINE",),
                (20_000, 200_000),
                (LP, IB),
                ("food", "trade", "medical"),
                ("保健食品", "茶叶", "净水器", "美容仪"),
            ),
            Violation(
                "经营超过保质期的食品",
                "当事人在其{place}销售超过保质期的{item}，货值金额较小。",
                "《中华人民共和国食品安全法》第三十四条第（十）项、第一百二十四条第一款第（五）项",
                ("CONFISCATION", "FINE"),
                (50_000, 100_000),
                (LP, IB),
                _FOOD,
                ("牛奶", "面包", "饮料", "速冻水饺"),
                confiscation_yuan=(50, 3_000),
                serious=0.05,
            ),
            Violation(
                "未取得食品经营许可从事食品经营",
                "当事人未取得食品经营许可，在其{place}从事{item}经营活动。",
                "《中华人民共和国食品安全法》第三十五条第一款、第一百二十二条第一款",
                ("CONFISCATION", "FINE"),
                (50_000, 100_000),
                (IB, NP),
                _FOOD,
                ("熟食", "盒饭", "奶茶"),
                confiscation_yuan=(200, 20_000),
            ),
            Violation(
                "未明码标价",
                "当事人在其{place}销售{item}未按规定明码标价。",
                "《中华人民共和国价格法》第十三条第一款、第四十二条",
                ("WARNING",),
                None,
                (LP, IB),
                ("food", "trade"),
                ("水果", "服装", "日用品"),
            ),
            Violation(
                "生产销售不合格产品",
                "当事人生产销售的{item}经抽检不合格。",
                "《中华人民共和国产品质量法》第十三条、第四十九条",
                ("CONFISCATION", "FINE"),
                (30_000, 500_000),
                (LP,),
                ("manufacturing",),
                ("电线电缆", "塑料管材", "儿童玩具"),
                confiscation_yuan=(1_000, 100_000),
                serious=0.15,
            ),
        ),
    ),
    "sthj": DepartmentKind(
        short="环",
        licence_doc="沪{d}环许〔{y}〕{n}号",
        penalty_doc="沪{d}环罚〔{y}〕{n}号",
        licences=(
            LicenceKind(
                "排污许可",
                "ORDINARY",
                "排污许可证",
                "准予{subject}按许可事项排放大气污染物、水污染物",
                (LP,),
                ("manufacturing",),
                5,
                "PW",
            ),
            LicenceKind(
                "建设项目环境影响评价文件审批",
                "APPROVAL",
                None,
                "同意{subject}新建项目环境影响报告表",
                (LP,),
                ("manufacturing", "construction"),
                None,
                "HP",
            ),
        ),
        violations=(
            Violation(
                "超标排放大气污染物",
                "当事人{item}排放口颗粒物浓度超过排放标准。",
                "《中华人民共和国大气污染防治法》第十八条、第九十九条第（二）项",
                ("FINE",),
                (100_000, 1_000_000),
                (LP,),
                ("manufacturing",),
                ("喷涂废气", "锅炉废气", "印染定型机废气"),
                serious=0.1,
            ),
            Violation(
                "未依法报批建设项目环境影响评价文件擅自开工建设",
                "当事人{item}项目未经环评审批擅自开工建设。",
                "《中华人民共和国环境影响评价法》第二十五条、第三十一条第一款",
                ("FINE",),
                (50_000, 500_000),
                (LP,),
                ("manufacturing", "construction"),
                ("扩建", "技改", "新建"),
            ),
            Violation(
                "危险废物贮存不规范",
                "当事人将{item}露天堆放，未设置危险废物识别标志。",
                "《中华人民共和国固体废物污染环境防治法》第八十一条、第一百一十二条第一款第（六）项",
                ("FINE",),
                (100_000, 1_000_000),
                (LP,),
                ("manufacturing",),
                ("废矿物油", "废活性炭", "废漆桶"),
            ),
            Violation(
                "无证排污",
                "当事人未取得排污许可证排放{item}。",
                "《排污许可管理条例》第二条、第三十三条第（一）项",
                ("FINE", "SUSPENSION"),
                (200_000, 1_000_000),
                (LP,),
                ("manufacturing",),
                ("工业废水", "工业废气"),
                serious=0.2,
            ),
        ),
    ),
    "cgzf": DepartmentKind(
        short="城管",
        licence_doc="沪{d}城管许〔{y}〕{n}号",
        penalty_doc="沪{d}城管罚〔{y}〕{n}号",
        licences=(
            LicenceKind(
                "户外广告设施设置许可",
                "ORDINARY",
                "户外广告设施设置许可证",
                "准予{subject}设置户外招牌广告设施",
                (LP, IB),
                ("food", "trade", "medical"),
                3,
                "GG",
            ),
            LicenceKind(
                "城市建筑垃圾处置核准",
                "APPROVAL",
                "建筑垃圾处置证",
                "准予{subject}处置建筑垃圾",
                (LP,),
                ("construction",),
                1,
                "JZ",
            ),
        ),
        violations=(
            Violation(
                "占道经营",
                "当事人在{item}擅自占用道路设摊经营。",
                "《上海市市容环境卫生管理条例》第二十二条第一款、第四十九条第一款",
                ("FINE",),
                (50, 500),
                (NP, IB),
                ("food", "trade"),
                ("人行道", "街角", "菜场门口"),
            ),
            Violation(
                "跨门营业",
                "当事人超出门窗和外墙摆卖{item}。",
                "《上海市市容环境卫生管理条例》第二十二条第一款、第四十九条第一款",
                ("WARNING",),
                None,
                (IB, LP),
                ("food", "trade"),
                ("水果", "蔬菜", "日用品"),
            ),
            Violation(
                "擅自设置户外广告设施",
                "当事人未经许可在{item}设置户外广告设施。",
                "《上海市户外广告设施管理办法》第十八条、第三十三条",
                ("FINE",),
                (5_000, 50_000),
                (LP, IB),
                ("trade", "food", "medical"),
                ("建筑物外墙", "屋顶", "店招上方"),
            ),
            Violation(
                "建筑垃圾运输车辆未密闭",
                "当事人所属车辆运输建筑垃圾时未采取密闭措施，沿途{item}。",
                "《上海市建筑垃圾处理管理规定》第二十二条、第四十六条",
                ("FINE",),
                (5_000, 50_000),
                (LP,),
                ("construction", "transport"),
                ("泄漏", "遗撒"),
            ),
            Violation(
                "未按规定分类投放生活垃圾",
                "当事人将{item}混合投放。",
                "《上海市生活垃圾管理条例》第二十七条、第五十七条",
                ("FINE",),
                (50, 200),
                (NP,),
                ("",),
                ("湿垃圾与干垃圾", "可回收物与干垃圾"),
            ),
        ),
    ),
    "wsjk": DepartmentKind(
        short="卫",
        licence_doc="沪{d}卫许〔{y}〕{n}号",
        penalty_doc="沪{d}卫罚〔{y}〕{n}号",
        licences=(
            LicenceKind(
                "医疗机构执业许可",
                "ORDINARY",
                "医疗机构执业许可证",
                "诊疗科目：内科；外科；口腔科",
                (LP,),
                ("medical",),
                5,
                "PDY",
            ),
            LicenceKind(
                "公共场所卫生许可",
                "ORDINARY",
                "公共场所卫生许可证",
                "经营项目：美容店、理发店",
                (LP, IB),
                ("medical",),
                4,
                "WGS",
            ),
            LicenceKind(
                "医师执业注册",
                "RECOGNITION",
                "医师执业证书",
                "执业类别：临床；执业范围：内科专业",
                (NP,),
                ("",),
                None,
                "YS",
            ),
        ),
        violations=(
            Violation(
                "未取得医疗机构执业许可证擅自执业",
                "当事人未取得医疗机构执业许可证，在{item}开展诊疗活动。",
                "《中华人民共和国基本医疗卫生法》第三十八条、第九十九条第一款",
                ("CONFISCATION", "FINE"),
                (50_000, 300_000),
                (NP, LP),
                ("medical",),
                ("居民住宅", "美容店", "足浴店"),
                confiscation_yuan=(500, 50_000),
                serious=0.3,
            ),
            Violation(
                "公共场所未取得卫生许可证擅自营业",
                "当事人未取得公共场所卫生许可证，经营{item}。",
                "《公共场所卫生管理条例实施细则》第二十二条、第三十五条第一款",
                ("WARNING", "FINE"),
                (500, 5_000),
                (LP, IB),
                ("medical",),
                ("美容店", "理发店", "足浴店"),
            ),
            Violation(
                "医疗废物管理不规范",
                "当事人未将{item}按类别分置于专用包装物内。",
                "《医疗废物管理条例》第十六条、第四十六条第（一）项",
                ("WARNING",),
                None,
                (LP,),
                ("medical",),
                ("感染性废物", "损伤性废物"),
            ),
        ),
    ),
    "yjgl": DepartmentKind(
        short="应急",
        licence_doc="沪{d}应急许〔{y}〕{n}号",
        penalty_doc="（沪{d}）应急罚〔{y}〕{n}号",
        licences=(
            LicenceKind(
                "危险化学品经营许可",
                "ORDINARY",
                "危险化学品经营许可证",
                "经营方式：批发（无仓储）；许可范围：{item}",
                (LP,),
                ("manufacturing", "trade"),
                3,
                "WH",
            ),
            LicenceKind(
                "烟花爆竹经营（零售）许可",
                "FRANCHISE",
                "烟花爆竹经营（零售）许可证",
                "零售烟花爆竹",
                (LP, IB),
                ("trade",),
                1,
                "YH",
            ),
        ),
        violations=(
            Violation(
                "未按规定对从业人员进行安全生产教育和培训",
                "当事人未对{item}进行安全生产教育和培训。",
                "《中华人民共和国安全生产法》第二十八条第一款、第九十七条第（三）项",
                ("FINE",),
                (10_000, 100_000),
                (LP,),
                ("manufacturing", "construction"),
                ("新入职员工", "特种作业人员"),
            ),
            Violation(
                "未建立事故隐患排查治理制度",
                "当事人未建立{item}事故隐患排查治理制度。",
                "《中华人民共和国安全生产法》第四十一条第二款、第一百零一条第（五）项",
                ("FINE",),
                (10_000, 100_000),
                (LP,),
                ("manufacturing", "food"),
                ("生产车间", "仓储场所"),
            ),
            Violation(
                "未取得危险化学品经营许可证经营危险化学品",
                "当事人未取得经营许可证经营{item}。",
                "《危险化学品安全管理条例》第三十三条第一款、第七十七条第三款",
                ("CONFISCATION", "FINE"),
                (100_000, 200_000),
                (LP, IB),
                ("trade", "manufacturing"),
                ("油漆", "稀释剂", "液化石油气"),
                confiscation_yuan=(1_000, 80_000),
                serious=0.2,
            ),
        ),
    ),
    "jtw": DepartmentKind(
        short="交",
        licence_doc="沪交许〔{y}〕{n}号",
        penalty_doc="沪交执{d}罚〔{y}〕{n}号",
        licences=(
            LicenceKind(
                "道路运输经营许可",
                "ORDINARY",
                "道路运输经营许可证",
                "经营范围：道路普通货物运输",
                (LP,),
                ("transport",),
                4,
                "沪交运管许可货字",
            ),
            LicenceKind(
                "网络预约出租汽车驾驶员证核发",
                "RECOGNITION",
                "网络预约出租汽车驾驶员证",
                "准予从事网约车客运服务",
                (NP,),
                ("",),
                6,
                "WY",
            ),
        ),
        violations=(
            Violation(
                "未取得道路运输经营许可擅自从事道路运输经营",
                "当事人驾驶{item}未取得经营许可从事客运经营。",
                "《中华人民共和国道路运输条例》第八条、第六十三条",
                ("CONFISCATION", "FINE"),
                (10_000, 100_000),
                (NP,),
                ("",),
                ("小型客车", "面包车"),
                confiscation_yuan=(50, 500),
            ),
            Violation(
                "车辆超限运输",
                "当事人所属{item}车货总质量超过限定标准上路行驶。",
                "《公路安全保护条例》第三十五条、第六十四条",
                ("FINE",),
                (500, 30_000),
                (LP, NP),
                ("transport",),
                ("重型半挂牵引车", "重型自卸货车"),
            ),
        ),
    ),
    "swj": DepartmentKind(
        short="税",
        licence_doc="沪税{d}许〔{y}〕{n}号",
        penalty_doc="沪税{d}罚〔{y}〕{n}号",
        licences=(
            LicenceKind(
                "增值税专用发票最高开票限额审批",
                "APPROVAL",
                None,
                "核准{subject}增值税专用发票最高开票限额十万元",
                (LP,),
                ("trade", "manufacturing"),
                None,
                "FP",
            ),
        ),
        violations=(
            Violation(
                "未按照规定期限办理纳税申报",
                "当事人未按照规定期限办理{item}纳税申报。",
                "《中华人民共和国税收征收管理法》第二十五条第一款、第六十二条",
                ("FINE",),
                (200, 2_000),
                (LP, IB),
                ("trade", "food", "manufacturing"),
                ("增值税", "个人所得税（代扣代缴）", "印花税"),
            ),
            Violation(
                "虚开增值税普通发票",
                "当事人为他人虚开{item}。",
                "《中华人民共和国发票管理办法》第二十一条、第三十五条",
                ("CONFISCATION", "FINE"),
                (50_000, 500_000),
                (LP,),
                ("trade",),
                ("增值税普通发票",),
                confiscation_yuan=(5_000, 300_000),
                serious=0.6,
            ),
        ),
    ),
}


def department_kind(key: str) -> DepartmentKind:
    return CATALOGUE.get(key, CATALOGUE["scjg"])
