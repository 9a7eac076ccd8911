"""The genus list of the synthetic ME/CFS cohort: real gut genera, classic taxonomy, illustrative weights.

Taxonomy
--------
Ranks follow the classic classification used by the Greengenes/RDP/SILVA-132 era
pipelines of the Giloteaux et al. 2016 study (doi:10.1186/s40168-016-0171-4), with
the phylum names the course brief uses (Firmicutes, Bacteroidetes, Actinobacteria,
Proteobacteria, Verrucomicrobia, Fusobacteria). Since 2021 the valid phylum names are
Bacillota, Bacteroidota, Actinomycetota, Pseudomonadota, Verrucomicrobiota and
Fusobacteriota, and several genera have moved family (e.g. *Faecalibacterium* and
*Oscillibacter* to Oscillospiraceae, *Parabacteroides* to Tannerellaceae). The table
keeps one consistent classic placement per genus rather than mixing eras.

Weights
-------
The control-group mean proportions are illustrative: the brief found no verified
typical genus abundances ([NV], §5). They respect the figures it does verify:
*Faecalibacterium* above 5% (Miquel et al. 2013, doi:10.1016/j.mib.2013.06.003);
*Akkermansia* 1-3% (encyclopedia summary, [V-2°]); Bacteroidetes plus Firmicutes
"up to 90%" (doi:10.1002/phar.2731); Enterobacteriaceae 3% in the comparison group
(Du Preez et al. 2018, doi:10.1186/s13643-018-0909-0, Table 4, [V-2°]).
"""

from __future__ import annotations

#: (genus, family, order, class, phylum, control mean proportion). Proportions sum to 1.
GENERA: tuple[tuple[str, str, str, str, str, float], ...] = (
    # Bacteroidetes: 34.2%
    ("Bacteroides", "Bacteroidaceae", "Bacteroidales", "Bacteroidia", "Bacteroidetes", 0.200),
    ("Prevotella", "Prevotellaceae", "Bacteroidales", "Bacteroidia", "Bacteroidetes", 0.040),
    ("Paraprevotella", "Prevotellaceae", "Bacteroidales", "Bacteroidia", "Bacteroidetes", 0.005),
    ("Alloprevotella", "Prevotellaceae", "Bacteroidales", "Bacteroidia", "Bacteroidetes", 0.004),
    ("Alistipes", "Rikenellaceae", "Bacteroidales", "Bacteroidia", "Bacteroidetes", 0.040),
    ("Parabacteroides", "Porphyromonadaceae", "Bacteroidales", "Bacteroidia", "Bacteroidetes", 0.025),
    ("Barnesiella", "Porphyromonadaceae", "Bacteroidales", "Bacteroidia", "Bacteroidetes", 0.012),
    ("Odoribacter", "Porphyromonadaceae", "Bacteroidales", "Bacteroidia", "Bacteroidetes", 0.006),
    ("Butyricimonas", "Porphyromonadaceae", "Bacteroidales", "Bacteroidia", "Bacteroidetes", 0.004),
    ("Coprobacter", "Porphyromonadaceae", "Bacteroidales", "Bacteroidia", "Bacteroidetes", 0.006),
    # Firmicutes: 53.2%
    ("Faecalibacterium", "Ruminococcaceae", "Clostridiales", "Clostridia", "Firmicutes", 0.080),
    ("Ruminococcus", "Ruminococcaceae", "Clostridiales", "Clostridia", "Firmicutes", 0.045),
    ("Subdoligranulum", "Ruminococcaceae", "Clostridiales", "Clostridia", "Firmicutes", 0.035),
    ("Gemmiger", "Ruminococcaceae", "Clostridiales", "Clostridia", "Firmicutes", 0.018),
    ("Oscillospira", "Ruminococcaceae", "Clostridiales", "Clostridia", "Firmicutes", 0.020),
    ("Oscillibacter", "Ruminococcaceae", "Clostridiales", "Clostridia", "Firmicutes", 0.008),
    ("Butyricicoccus", "Ruminococcaceae", "Clostridiales", "Clostridia", "Firmicutes", 0.006),
    ("Anaerotruncus", "Ruminococcaceae", "Clostridiales", "Clostridia", "Firmicutes", 0.003),
    ("Blautia", "Lachnospiraceae", "Clostridiales", "Clostridia", "Firmicutes", 0.060),
    ("Agathobacter", "Lachnospiraceae", "Clostridiales", "Clostridia", "Firmicutes", 0.030),
    ("Roseburia", "Lachnospiraceae", "Clostridiales", "Clostridia", "Firmicutes", 0.025),
    ("Coprococcus", "Lachnospiraceae", "Clostridiales", "Clostridia", "Firmicutes", 0.015),
    ("Dorea", "Lachnospiraceae", "Clostridiales", "Clostridia", "Firmicutes", 0.017),
    ("Fusicatenibacter", "Lachnospiraceae", "Clostridiales", "Clostridia", "Firmicutes", 0.012),
    ("Anaerostipes", "Lachnospiraceae", "Clostridiales", "Clostridia", "Firmicutes", 0.010),
    ("Lachnospira", "Lachnospiraceae", "Clostridiales", "Clostridia", "Firmicutes", 0.010),
    ("Lachnoclostridium", "Lachnospiraceae", "Clostridiales", "Clostridia", "Firmicutes", 0.015),
    ("Butyrivibrio", "Lachnospiraceae", "Clostridiales", "Clostridia", "Firmicutes", 0.003),
    ("Pseudobutyrivibrio", "Lachnospiraceae", "Clostridiales", "Clostridia", "Firmicutes", 0.003),
    ("Tyzzerella", "Lachnospiraceae", "Clostridiales", "Clostridia", "Firmicutes", 0.003),
    ("Eisenbergiella", "Lachnospiraceae", "Clostridiales", "Clostridia", "Firmicutes", 0.002),
    ("Marvinbryantia", "Lachnospiraceae", "Clostridiales", "Clostridia", "Firmicutes", 0.002),
    ("Eubacterium", "Eubacteriaceae", "Clostridiales", "Clostridia", "Firmicutes", 0.020),
    ("Romboutsia", "Peptostreptococcaceae", "Clostridiales", "Clostridia", "Firmicutes", 0.008),
    ("Intestinibacter", "Peptostreptococcaceae", "Clostridiales", "Clostridia", "Firmicutes", 0.004),
    ("Terrisporobacter", "Peptostreptococcaceae", "Clostridiales", "Clostridia", "Firmicutes", 0.002),
    ("Clostridium", "Clostridiaceae", "Clostridiales", "Clostridia", "Firmicutes", 0.006),
    ("Sarcina", "Clostridiaceae", "Clostridiales", "Clostridia", "Firmicutes", 0.001),
    ("Christensenella", "Christensenellaceae", "Clostridiales", "Clostridia", "Firmicutes", 0.010),
    ("Dialister", "Veillonellaceae", "Selenomonadales", "Negativicutes", "Firmicutes", 0.012),
    ("Veillonella", "Veillonellaceae", "Selenomonadales", "Negativicutes", "Firmicutes", 0.003),
    ("Megasphaera", "Veillonellaceae", "Selenomonadales", "Negativicutes", "Firmicutes", 0.003),
    ("Megamonas", "Veillonellaceae", "Selenomonadales", "Negativicutes", "Firmicutes", 0.002),
    ("Mitsuokella", "Veillonellaceae", "Selenomonadales", "Negativicutes", "Firmicutes", 0.001),
    ("Phascolarctobacterium", "Acidaminococcaceae", "Selenomonadales", "Negativicutes", "Firmicutes", 0.010),
    ("Acidaminococcus", "Acidaminococcaceae", "Selenomonadales", "Negativicutes", "Firmicutes", 0.002),
    ("Holdemanella", "Erysipelotrichaceae", "Erysipelotrichales", "Erysipelotrichia", "Firmicutes", 0.004),
    ("Turicibacter", "Erysipelotrichaceae", "Erysipelotrichales", "Erysipelotrichia", "Firmicutes", 0.002),
    ("Catenibacterium", "Erysipelotrichaceae", "Erysipelotrichales", "Erysipelotrichia", "Firmicutes", 0.002),
    ("Erysipelatoclostridium", "Erysipelotrichaceae", "Erysipelotrichales", "Erysipelotrichia", "Firmicutes", 0.002),
    ("Holdemania", "Erysipelotrichaceae", "Erysipelotrichales", "Erysipelotrichia", "Firmicutes", 0.001),
    ("Coprobacillus", "Erysipelotrichaceae", "Erysipelotrichales", "Erysipelotrichia", "Firmicutes", 0.001),
    ("Streptococcus", "Streptococcaceae", "Lactobacillales", "Bacilli", "Firmicutes", 0.010),
    ("Lactococcus", "Streptococcaceae", "Lactobacillales", "Bacilli", "Firmicutes", 0.001),
    ("Lactobacillus", "Lactobacillaceae", "Lactobacillales", "Bacilli", "Firmicutes", 0.002),
    ("Enterococcus", "Enterococcaceae", "Lactobacillales", "Bacilli", "Firmicutes", 0.001),
    # Actinobacteria: 5.0%
    ("Bifidobacterium", "Bifidobacteriaceae", "Bifidobacteriales", "Actinobacteria", "Actinobacteria", 0.032),
    ("Actinomyces", "Actinomycetaceae", "Actinomycetales", "Actinobacteria", "Actinobacteria", 0.001),
    ("Collinsella", "Coriobacteriaceae", "Coriobacteriales", "Coriobacteriia", "Actinobacteria", 0.010),
    ("Eggerthella", "Coriobacteriaceae", "Coriobacteriales", "Coriobacteriia", "Actinobacteria", 0.002),
    ("Adlercreutzia", "Coriobacteriaceae", "Coriobacteriales", "Coriobacteriia", "Actinobacteria", 0.002),
    ("Gordonibacter", "Coriobacteriaceae", "Coriobacteriales", "Coriobacteriia", "Actinobacteria", 0.002),
    ("Slackia", "Coriobacteriaceae", "Coriobacteriales", "Coriobacteriia", "Actinobacteria", 0.001),
    # Proteobacteria: 5.5%, of which Enterobacteriaceae 3.0%
    ("Escherichia", "Enterobacteriaceae", "Enterobacteriales", "Gammaproteobacteria", "Proteobacteria", 0.020),
    ("Klebsiella", "Enterobacteriaceae", "Enterobacteriales", "Gammaproteobacteria", "Proteobacteria", 0.004),
    ("Enterobacter", "Enterobacteriaceae", "Enterobacteriales", "Gammaproteobacteria", "Proteobacteria", 0.003),
    ("Citrobacter", "Enterobacteriaceae", "Enterobacteriales", "Gammaproteobacteria", "Proteobacteria", 0.003),
    ("Haemophilus", "Pasteurellaceae", "Pasteurellales", "Gammaproteobacteria", "Proteobacteria", 0.003),
    ("Sutterella", "Sutterellaceae", "Burkholderiales", "Betaproteobacteria", "Proteobacteria", 0.008),
    ("Parasutterella", "Sutterellaceae", "Burkholderiales", "Betaproteobacteria", "Proteobacteria", 0.004),
    ("Oxalobacter", "Oxalobacteraceae", "Burkholderiales", "Betaproteobacteria", "Proteobacteria", 0.001),
    ("Bilophila", "Desulfovibrionaceae", "Desulfovibrionales", "Deltaproteobacteria", "Proteobacteria", 0.004),
    ("Desulfovibrio", "Desulfovibrionaceae", "Desulfovibrionales", "Deltaproteobacteria", "Proteobacteria", 0.005),
    # Verrucomicrobia: 2.0%
    ("Akkermansia", "Verrucomicrobiaceae", "Verrucomicrobiales", "Verrucomicrobiae", "Verrucomicrobia", 0.020),
    # Fusobacteria: 0.1%
    ("Fusobacterium", "Fusobacteriaceae", "Fusobacteriales", "Fusobacteriia", "Fusobacteria", 0.001),
)

#: Butyrate producers lowered in ME/CFS. F. prausnitzii and Eubacterium rectale
#: (now Agathobacter rectalis) are the two Guo et al. 2023 found reduced
#: (doi:10.1016/j.chom.2023.01.004); Faecalibacterium is also Nagy-Szakal et al.
#: 2017's top marker (doi:10.1186/s40168-017-0261-y). Roseburia, Coprococcus,
#: Anaerostipes and Butyricicoccus are the other main butyrate-producing genera of the
#: list, added so the group effect is a functional guild rather than two taxa.
BUTYRATE_PRODUCERS = ("Faecalibacterium", "Agathobacter", "Roseburia", "Coprococcus",
                      "Anaerostipes", "Butyricicoccus")

#: The family whose share is raised in ME/CFS (Du Preez 2018: 6% vs 3%).
RAISED_FAMILY = "Enterobacteriaceae"
