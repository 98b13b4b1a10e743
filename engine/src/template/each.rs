//! `{{#each}}` as handlebars defines it, charging one budget step per item, so nested loops
//! over large lists cannot freeze an evaluator thread (the built-in helper never returns to
//! the budget between items).

use handlebars::{
    BlockContext, BlockParams, Context, Handlebars, Helper, HelperDef, HelperResult, Output, PathAndJson, RenderContext, RenderError,
    RenderErrorReason, Renderable, to_json,
};
use serde_json::Value;

use crate::budget;

#[derive(Clone, Copy)]
pub(super) struct MeteredEach;

impl HelperDef for MeteredEach {
    fn call<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        r: &'reg Handlebars<'reg>,
        ctx: &'rc Context,
        rc: &mut RenderContext<'reg, 'rc>,
        out: &mut dyn Output,
    ) -> HelperResult {
        let value = h.param(0).ok_or(RenderErrorReason::ParamNotFoundForIndex("each", 0))?;
        let Some(template) = h.template() else { return Ok(()) };
        let items: Vec<(Option<&String>, &Value)> = match value.value() {
            Value::Array(list) if !list.is_empty() || h.inverse().is_none() => list.iter().map(|v| (None, v)).collect(),
            Value::Object(map) if !map.is_empty() || h.inverse().is_none() => map.iter().map(|(k, v)| (Some(k), v)).collect(),
            _ => {
                return match h.inverse() {
                    Some(otherwise) => otherwise.render(r, ctx, rc, out),
                    None if r.strict_mode() => Err(RenderError::strict_error(value.relative_path())),
                    None => Ok(()),
                };
            }
        };
        rc.push_block(block_of(value));
        let base = value.context_path();
        let len = items.len();
        for (i, (key, item)) in items.into_iter().enumerate() {
            budget::tick();
            if let Some(block) = rc.block_mut() {
                block.set_local_var("first", to_json(i == 0));
                block.set_local_var("last", to_json(i + 1 == len));
                block.set_local_var("index", to_json(i));
                let segment = key.cloned().unwrap_or_else(|| i.to_string());
                let name = match key {
                    Some(k) => to_json(k),
                    None => to_json(i),
                };
                if key.is_some() {
                    block.set_local_var("key", name.clone());
                }
                match base {
                    Some(path) if i == 0 => {
                        let mut p = path.clone();
                        p.push(segment);
                        *block.base_path_mut() = p;
                    }
                    Some(_) => {
                        if let Some(last) = block.base_path_mut().last_mut() {
                            *last = segment;
                        }
                    }
                    None => block.set_base_value(item.clone()),
                }
                set_block_params(block, h, base.is_some(), &name, item)?;
            }
            template.render(r, ctx, rc, out)?;
        }
        rc.pop_block();
        Ok(())
    }
}

fn block_of<'rc>(param: &PathAndJson<'rc>) -> BlockContext<'rc> {
    let mut block = BlockContext::new();
    match param.context_path() {
        Some(path) => block.base_path_mut().clone_from(path),
        None => block.set_base_value(param.value().clone()),
    }
    block
}

fn set_block_params<'rc>(
    block: &mut BlockContext<'rc>,
    h: &Helper<'rc>,
    by_path: bool,
    key: &Value,
    item: &Value,
) -> Result<(), RenderError> {
    let (value_name, key_name) = match (h.block_param(), h.block_param_pair()) {
        (Some(v), _) => (v, None),
        (None, Some((v, k))) => (v, Some(k)),
        (None, None) => return Ok(()),
    };
    let mut params = BlockParams::new();
    if by_path {
        params.add_path(value_name, Vec::new())?;
    } else {
        params.add_value(value_name, item.clone())?;
    }
    if let Some(k) = key_name {
        params.add_value(k, key.clone())?;
    }
    block.set_block_params(params);
    Ok(())
}
