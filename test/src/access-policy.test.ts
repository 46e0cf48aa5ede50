import { test } from 'tap'
import { AccessPolicy } from '../../src/auth/access-policy.js'

const grant = (allow: string[], deny: string[] = []) => ({ allow, deny })
const none = grant([])
const principal = (roles: string[]) => ({ kind: 'jwt' as const, id: 'p', roles, scopes: [] })

test('role sets are told apart exactly: a role name holding a separator is not two roles', async (t) => {
  const policy = new AccessPolicy({
    a: { tools: grant(['a__*']), resources: none, prompts: none, admin: false },
    b: { tools: grant(['b__*']), resources: none, prompts: none, admin: false }
  })
  t.ok(policy.for(principal(['a', 'b'])).sees('tools', 'a__x'), 'two roles: the union')
  t.notOk(policy.for(principal(['a\nb'])).sees('tools', 'a__x'), 'one unknown role named "a\\nb" sees nothing, whatever was cached before')
  t.notOk(policy.for(principal(['a,b'])).sees('tools', 'b__x'))
  t.ok(policy.for(principal(['b'])).sees('tools', 'b__x'))
  t.notOk(policy.for(principal([])).sees('tools', 'a__x'), 'no role: nothing')
  t.ok(new AccessPolicy(null).for(principal([])).unrestricted, 'no roles configured: everything')
  t.ok(policy.for(null).unrestricted, 'no principal (no auth): everything')
})

test('deny wins within a role; admin comes from any role; a kind a role does not mention grants nothing', async (t) => {
  const policy = new AccessPolicy({
    dev: { tools: grant(['*'], ['*__delete_*']), resources: none, prompts: grant(['*']), admin: false },
    ops: { tools: none, resources: grant(['docs://*']), prompts: none, admin: true }
  })
  const dev = policy.for(principal(['dev']))
  t.same([dev.sees('tools', 'gh__create_issue'), dev.sees('tools', 'gh__delete_repo'), dev.sees('resources', 'docs://a'), dev.admin], [true, false, false, false])
  const both = policy.for(principal(['dev', 'ops']))
  t.same([both.sees('resources', 'docs://a'), both.sees('tools', 'gh__delete_repo'), both.admin], [true, false, true])
  t.ok(policy.grantsAdmin)
})
