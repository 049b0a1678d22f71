//! Index scans of shadow tables, planned for a foreign-table scan. Any
//! btree index on a shadow table (its primary key on `id`, or one a user
//! made: `CREATE INDEX ON sequin_shadow.stripe_customers (email)`) can
//! serve conditions `column <op> <value>` on its first column, where `op`
//! is one of the index's operators (`=`, `<`, `<=`, `>=`, `>`), and an
//! `ORDER BY` of that column (with `LIMIT`, only the first rows are read).
//! Joins on `id` probe the primary key once per outer row (parameterized
//! paths). A scan's choice travels from path to plan to executor as
//! `IndexScan`.

use pgrx::pg_sys;
use pgrx::PgList;

/// One scan key: a condition on the index's first column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    pub strategy: u16,
    /// The type of the value compared with the column.
    pub subtype: pg_sys::Oid,
    /// The comparison function.
    pub proc: pg_sys::Oid,
    pub collation: pg_sys::Oid,
}

/// An index scan of the shadow table: its keys (whose values are the plan's
/// `fdw_exprs`, in order) and its direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexScan {
    pub index: pg_sys::Oid,
    pub backward: bool,
    pub keys: Vec<Key>,
}

impl IndexScan {
    /// As a list of oids (plans must be copyable): index, direction, then
    /// four per key.
    pub unsafe fn to_list(&self) -> *mut pg_sys::List {
        let mut list = pg_sys::lappend_oid(std::ptr::null_mut(), self.index);
        list = pg_sys::lappend_oid(list, pg_sys::Oid::from(self.backward as u32));
        for key in &self.keys {
            for value in [pg_sys::Oid::from(u32::from(key.strategy)), key.subtype, key.proc, key.collation] {
                list = pg_sys::lappend_oid(list, value);
            }
        }
        list
    }

    /// Reads `to_list`'s list back; None for an empty one (a heap scan).
    pub unsafe fn from_list(list: *mut pg_sys::List) -> Option<IndexScan> {
        let values: Vec<pg_sys::Oid> = PgList::<pg_sys::Oid>::from_pg(list).iter_oid().collect();
        let (&index, rest) = values.split_first()?;
        let (&backward, keys) = rest.split_first()?;
        if keys.len() % 4 != 0 {
            return None;
        }
        let keys = keys
            .chunks(4)
            .map(|k| Key { strategy: u32::from(k[0]) as u16, subtype: k[1], proc: k[2], collation: k[3] })
            .collect();
        Some(IndexScan { index, backward: u32::from(backward) != 0, keys })
    }
}

/// What planning needs of a btree index on a shadow table.
pub struct ShadowIndex {
    pub oid: pg_sys::Oid,
    /// The foreign-table column of its first key.
    pub column: pg_sys::AttrNumber,
    pub opfamily: pg_sys::Oid,
    pub input_type: pg_sys::Oid,
    pub collation: pg_sys::Oid,
    /// Its first column is stored descending / with nulls first.
    pub descending: bool,
    pub nulls_first: bool,
    pub pages: f64,
    pub is_primary: bool,
}

/// The btree indexes of the shadow table whose first key is a plain column
/// of the foreign table (same name, same type): no expression or partial
/// indexes, none that is not valid yet.
pub unsafe fn shadow_indexes(shadow: pg_sys::Oid, foreign_table: pg_sys::Oid) -> Vec<ShadowIndex> {
    let relation = pg_sys::relation_open(shadow, pg_sys::AccessShareLock as i32);
    let mut found = Vec::new();
    for oid in PgList::<pg_sys::Oid>::from_pg(pg_sys::RelationGetIndexList(relation)).iter_oid() {
        let index = pg_sys::index_open(oid, pg_sys::AccessShareLock as i32);
        if let Some(described) = describe(index, shadow, foreign_table) {
            found.push(described);
        }
        pg_sys::index_close(index, pg_sys::NoLock as i32);
    }
    // Kept locked until the transaction ends, as the planner does.
    pg_sys::relation_close(relation, pg_sys::NoLock as i32);
    found
}

unsafe fn describe(index: pg_sys::Relation, shadow: pg_sys::Oid, foreign_table: pg_sys::Oid) -> Option<ShadowIndex> {
    let form = (*index).rd_index;
    if form.is_null()
        || (*(*index).rd_rel).relam != pg_sys::Oid::from(pg_sys::BTREE_AM_OID)
        || !(*form).indisvalid
        || (*form).indnkeyatts < 1
        || !pg_sys::RelationGetIndexExpressions(index).is_null()
        || !pg_sys::RelationGetIndexPredicate(index).is_null()
    {
        return None;
    }
    let shadow_attnum = *(*form).indkey.values.as_ptr();
    let name = pg_sys::get_attname(shadow, shadow_attnum, true);
    if shadow_attnum <= 0 || name.is_null() {
        return None;
    }
    let column = pg_sys::get_attnum(foreign_table, name);
    if column <= 0 || pg_sys::get_atttype(foreign_table, column) != pg_sys::get_atttype(shadow, shadow_attnum) {
        return None;
    }
    let option = *(*index).rd_indoption as u32;
    let pages = pg_sys::RelationGetNumberOfBlocksInFork(index, pg_sys::ForkNumber::MAIN_FORKNUM) as f64;
    Some(ShadowIndex {
        oid: (*index).rd_id,
        column,
        opfamily: *(*index).rd_opfamily,
        input_type: *(*index).rd_opcintype,
        collation: *(*index).rd_indcollation,
        descending: option & pg_sys::INDOPTION_DESC != 0,
        nulls_first: option & pg_sys::INDOPTION_NULLS_FIRST != 0,
        pages: pages.max(1.0),
        is_primary: (*form).indisprimary,
    })
}

/// Whether `node` is this relation's column `column`.
unsafe fn is_column(node: *mut pg_sys::Node, relid: u32, column: pg_sys::AttrNumber) -> bool {
    let node = strip_relabel(node);
    !node.is_null()
        && (*node).type_ == pg_sys::NodeTag::T_Var
        && (*(node as *mut pg_sys::Var)).varno as u32 == relid
        && (*(node as *mut pg_sys::Var)).varattno == column
        && (*(node as *mut pg_sys::Var)).varlevelsup == 0
}

/// The restrictions an index can apply as scan keys: `column <op> value` or
/// `value <op> column`, the value computable before the scan, the operator
/// one of the index's (turned around when the column is on the right).
/// Each with its key and value expression.
pub unsafe fn index_conditions(
    baserel: *mut pg_sys::RelOptInfo,
    index: &ShadowIndex,
) -> Vec<(*mut pg_sys::RestrictInfo, Key, *mut pg_sys::Expr)> {
    let relid = (*baserel).relid;
    let mut conditions = Vec::new();
    for rinfo in PgList::<pg_sys::RestrictInfo>::from_pg((*baserel).baserestrictinfo).iter_ptr() {
        let clause = (*rinfo).clause as *mut pg_sys::Node;
        if clause.is_null() || (*clause).type_ != pg_sys::NodeTag::T_OpExpr {
            continue;
        }
        let op = clause as *mut pg_sys::OpExpr;
        let args = PgList::<pg_sys::Node>::from_pg((*op).args);
        let (Some(left), Some(right), 2) = (args.get_ptr(0), args.get_ptr(1), args.len()) else { continue };
        let computable = |node: *mut pg_sys::Node| {
            !pg_sys::contain_var_clause(node) && !pg_sys::contain_volatile_functions(node)
        };
        let (value, opno) = if is_column(left, relid, index.column) && computable(right) {
            (right, (*op).opno)
        } else if is_column(right, relid, index.column) && computable(left) {
            (left, pg_sys::get_commutator((*op).opno))
        } else {
            continue;
        };
        if opno == pg_sys::InvalidOid {
            continue;
        }
        let strategy = pg_sys::get_op_opfamily_strategy(opno, index.opfamily);
        if strategy <= 0 || strategy > pg_sys::BTMaxStrategyNumber as i32 {
            continue;
        }
        let (mut left_type, mut right_type) = (pg_sys::InvalidOid, pg_sys::InvalidOid);
        pg_sys::op_input_types(opno, &mut left_type, &mut right_type);
        // The index compares under its own collation: another one's order
        // (or equality) is not the index's.
        let collation = (*op).inputcollid;
        if left_type != index.input_type || (index.collation != pg_sys::InvalidOid && collation != index.collation) {
            continue;
        }
        let key = Key { strategy: strategy as u16, subtype: right_type, proc: pg_sys::get_opcode(opno), collation };
        conditions.push((rinfo, key, value.cast()));
    }
    conditions
}

/// The direction in which this index returns rows in the order the query
/// asks for (`ORDER BY` its first column alone), if it does: with the
/// pathkeys to give the path.
pub unsafe fn index_order(
    root: *mut pg_sys::PlannerInfo,
    baserel: *mut pg_sys::RelOptInfo,
    index: &ShadowIndex,
) -> Option<(bool, *mut pg_sys::List)> {
    let wanted = (*root).query_pathkeys;
    let pathkeys = PgList::<pg_sys::PathKey>::from_pg(wanted);
    if pathkeys.len() != 1 {
        return None;
    }
    let pathkey = pathkeys.get_ptr(0)?;
    if (*pathkey).pk_opfamily != index.opfamily {
        return None;
    }
    let class = (*pathkey).pk_eclass;
    let relid = (*baserel).relid;
    let ours = PgList::<pg_sys::EquivalenceMember>::from_pg((*class).ec_members)
        .iter_ptr()
        .any(|member| is_column((*member).em_expr.cast(), relid, index.column));
    if !ours || (*class).ec_collation != index.collation && index.collation != pg_sys::InvalidOid {
        return None;
    }
    // PostgreSQL 18 names a pathkey's direction by comparison type
    // (COMPARE_LT ascending) instead of a btree strategy number.
    #[cfg(feature = "pg15")]
    let ascending = (*pathkey).pk_strategy == pg_sys::BTLessStrategyNumber as i32;
    #[cfg(feature = "pg18")]
    let ascending = (*pathkey).pk_cmptype == pg_sys::CompareType::COMPARE_LT;
    // Forward, the index gives its own order; backward, the reverse of it
    // (descending with the nulls on the other side).
    let forward = ascending != index.descending && (*pathkey).pk_nulls_first == index.nulls_first;
    let backward = ascending == index.descending && (*pathkey).pk_nulls_first != index.nulls_first;
    match (forward, backward) {
        (true, _) => Some((false, wanted)),
        (_, true) => Some((true, wanted)),
        _ => None,
    }
}

/// The btree descent to the first key, as Postgres's btcostestimate counts
/// it: a comparison per level of a binary search over the tuples, and 50
/// operator costs per page on the way down (three levels).
unsafe fn descent_cost(baserel: *mut pg_sys::RelOptInfo) -> f64 {
    ((*baserel).tuples.max(2.0).log2().ceil() + 50.0 * 3.0) * pg_sys::cpu_operator_cost
}

/// What an index scan that fetches `fraction` of the table costs, as
/// Postgres costs an index scan (the btree descent, the index pages in
/// order, the table pages by the Mackert–Lohman estimate): startup and total.
pub unsafe fn index_scan_cost(
    root: *mut pg_sys::PlannerInfo,
    baserel: *mut pg_sys::RelOptInfo,
    index: &ShadowIndex,
    fraction: f64,
    conditions: usize,
) -> (f64, f64) {
    let tuples = (*baserel).tuples.max(1.0);
    let fetched = (fraction.clamp(0.0, 1.0) * tuples).max(1.0);
    let descent = descent_cost(baserel);
    let index_pages = (fraction * index.pages).ceil().max(1.0) * pg_sys::random_page_cost;
    let heap_pages = pg_sys::index_pages_fetched(fetched, (*baserel).pages, index.pages, root) * pg_sys::random_page_cost;
    let cpu = fetched * (pg_sys::cpu_index_tuple_cost + pg_sys::cpu_tuple_cost + conditions as f64 * pg_sys::cpu_operator_cost);
    (descent, descent + index_pages + heap_pages + cpu)
}

/// A node without the binary-compatible cast around it (varchar as text).
unsafe fn strip_relabel(node: *mut pg_sys::Node) -> *mut pg_sys::Node {
    if !node.is_null() && (*node).type_ == pg_sys::NodeTag::T_RelabelType {
        (*(node as *mut pg_sys::RelabelType)).arg.cast()
    } else {
        node
    }
}

/// The other side `e` of a clause `id = e` (or `e = id`) on text, when
/// `accepts(e)`.
unsafe fn id_equality(
    clause: *mut pg_sys::Node,
    relid: u32,
    id_attno: i16,
    accepts: impl Fn(*mut pg_sys::Node) -> bool,
) -> Option<*mut pg_sys::Expr> {
    if clause.is_null() || (*clause).type_ != pg_sys::NodeTag::T_OpExpr {
        return None;
    }
    let op = clause as *mut pg_sys::OpExpr;
    let args = PgList::<pg_sys::Node>::from_pg((*op).args);
    if (*op).opno != pg_sys::Oid::from(pg_sys::TextEqualOperator) || args.len() != 2 {
        return None;
    }
    let (left, right) = (args.get_ptr(0)?, args.get_ptr(1)?);
    if is_column(left, relid, id_attno) && accepts(right) {
        return Some(right.cast());
    }
    if is_column(right, relid, id_attno) && accepts(left) {
        return Some(left.cast());
    }
    None
}

/// Nothing volatile: the same value for every row of one scan.
unsafe fn is_stable(node: *mut pg_sys::Node) -> bool {
    !node.is_null() && !pg_sys::contain_volatile_functions(node)
}

/// An equivalence class member that is this relation's `id` (the callback
/// of `generate_implied_equalities_for_column`; `arg` points to the id's
/// attribute number).
#[pgrx::pg_guard]
unsafe extern "C-unwind" fn member_is_id(
    _root: *mut pg_sys::PlannerInfo,
    rel: *mut pg_sys::RelOptInfo,
    _class: *mut pg_sys::EquivalenceClass,
    member: *mut pg_sys::EquivalenceMember,
    arg: *mut std::ffi::c_void,
) -> bool {
    is_column((*member).em_expr.cast(), (*rel).relid, *(arg as *const i16))
}

/// Join clauses `id = e` where `e` reads other relations only: with the
/// values of `e` from the outer side of a nested loop, each outer row is
/// one probe of the shadow's primary key. Each comes with the outer
/// relations it needs. Both the join clauses of this relation and those
/// the planner keeps as equivalence classes (`a.x = b.id`) are looked at.
pub unsafe fn join_lookups(
    root: *mut pg_sys::PlannerInfo,
    baserel: *mut pg_sys::RelOptInfo,
    id_attno: i16,
) -> Vec<(*mut pg_sys::Expr, pg_sys::Relids)> {
    let relid = (*baserel).relid;
    let mut attno = id_attno;
    let implied = pg_sys::generate_implied_equalities_for_column(
        root,
        baserel,
        Some(member_is_id),
        (&mut attno as *mut i16).cast(),
        (*baserel).lateral_referencers,
    );
    let clauses = PgList::<pg_sys::RestrictInfo>::from_pg((*baserel).joininfo)
        .iter_ptr()
        .chain(PgList::<pg_sys::RestrictInfo>::from_pg(implied).iter_ptr())
        .collect::<Vec<_>>();
    let mut lookups = Vec::new();
    for rinfo in clauses {
        if !pg_sys::join_clause_is_movable_to(rinfo, baserel) {
            continue;
        }
        let outer_only = |node: *mut pg_sys::Node| is_stable(node) && !pg_sys::bms_is_member(relid as i32, pg_sys::pull_varnos(root, node));
        let Some(outer) = id_equality((*rinfo).clause.cast(), relid, id_attno, outer_only) else { continue };
        let required = pg_sys::bms_del_member(
            pg_sys::bms_union((*rinfo).clause_relids, (*baserel).lateral_relids),
            relid as i32,
        );
        // Since PostgreSQL 16 an empty set is always NULL, and bms_is_empty
        // is a macro saying so (no function to call).
        #[cfg(feature = "pg15")]
        let empty = pg_sys::bms_is_empty(required);
        #[cfg(feature = "pg18")]
        let empty = required.is_null();
        if !empty {
            lookups.push((outer, required));
        }
    }
    lookups
}

/// What one probe of the shadow's primary key costs, as Postgres costs an
/// index scan repeated `loops` times (the inner side of a nested loop):
/// the pages it reads by the Mackert–Lohman estimate (`index_pages_fetched`,
/// which counts on the cache for repeated probes), the btree descent and
/// one row.
pub unsafe fn probe_cost(root: *mut pg_sys::PlannerInfo, baserel: *mut pg_sys::RelOptInfo, key: &ShadowIndex, loops: f64) -> f64 {
    let loops = loops.clamp(1.0, 1e9);
    let heap_pages = pg_sys::index_pages_fetched(loops, (*baserel).pages, key.pages, root);
    let index_pages = pg_sys::index_pages_fetched(loops, key.pages as u32, key.pages, root);
    let io = (heap_pages + index_pages) * pg_sys::random_page_cost / loops;
    let descent = descent_cost(baserel);
    io + descent + pg_sys::cpu_index_tuple_cost + pg_sys::cpu_operator_cost + pg_sys::cpu_tuple_cost
}

/// How many outer rows a lookup parameterized by `outer` is likely run for:
/// the estimated rows of those relations.
pub unsafe fn outer_rows(root: *mut pg_sys::PlannerInfo, outer: pg_sys::Relids) -> f64 {
    let mut rows = 1.0f64;
    let mut member = -1;
    loop {
        member = pg_sys::bms_next_member(outer, member);
        if member < 0 {
            return rows;
        }
        // Only base relations have row estimates here (an outer join's
        // own relid has none).
        if member > 0 && member < (*root).simple_rel_array_size {
            let rel = *(*root).simple_rel_array.add(member as usize);
            if !rel.is_null() && (*rel).reloptkind == pg_sys::RelOptKind::RELOPT_BASEREL {
                rows *= (*rel).rows.max(1.0);
            }
        }
    }
}
